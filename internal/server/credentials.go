package server

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Credentials are the root key pair of the server's first account.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// Generated is true when this start created them.
	Generated bool
	// File is where they are stored, when they came from or went to a file.
	File string
}

// Profile is the profile name in the shared-credentials file.
const Profile = "kindling"

// loadCredentials takes the root credentials from the environment, else from
// DATA_DIR/credentials, else generates a pair and writes that file.
func loadCredentials(dataDir string) (Credentials, error) {
	id, secret := os.Getenv("KINDLING_ACCESS_KEY_ID"), os.Getenv("KINDLING_SECRET_ACCESS_KEY")
	if id != "" || secret != "" {
		if id == "" || secret == "" {
			return Credentials{}, fmt.Errorf("set both KINDLING_ACCESS_KEY_ID and KINDLING_SECRET_ACCESS_KEY, or neither")
		}
		return Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
	}
	file := filepath.Join(dataDir, "credentials")
	if b, err := os.ReadFile(file); err == nil {
		c, err := parseSharedCredentials(b, Profile)
		if err != nil {
			return Credentials{}, fmt.Errorf("%s: %w", file, err)
		}
		c.File = file
		return c, nil
	} else if !os.IsNotExist(err) {
		return Credentials{}, err
	}
	c := Credentials{
		AccessKeyID:     "AKIA" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
		SecretAccessKey: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
		Generated:       true,
		File:            file,
	}
	body := fmt.Sprintf("[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", Profile, c.AccessKeyID, c.SecretAccessKey)
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return Credentials{}, err
	}
	if err := os.Rename(tmp, file); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

// parseSharedCredentials reads one profile of an AWS shared-credentials file.
func parseSharedCredentials(b []byte, profile string) (Credentials, error) {
	var c Credentials
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			in = strings.TrimSpace(line[1:len(line)-1]) == profile
			continue
		}
		if !in {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			c.AccessKeyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			c.SecretAccessKey = strings.TrimSpace(v)
		}
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return Credentials{}, fmt.Errorf("no complete [%s] profile", profile)
	}
	return c, nil
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
