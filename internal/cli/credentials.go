package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// Credentials is an access key pair for SigV4.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// ParseCredentialsFile reads an AWS shared-credentials file (INI: "[profile]"
// sections of "key = value" lines, "#" and ";" comments) and returns the pair
// of the named profile. Keys are matched case-insensitively; values are
// trimmed of surrounding blanks.
func ParseCredentialsFile(r io.Reader, profile string) (Credentials, error) {
	var (
		creds   Credentials
		section string
		found   bool
	)
	sc := bufio.NewScanner(r)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return Credentials{}, fmt.Errorf("line %d: unterminated section header", lineNo)
			}
			section = strings.TrimSpace(line[1:end])
			section = strings.TrimSpace(strings.TrimPrefix(section, "profile "))
			if section == profile {
				found = true
			}
			continue
		}
		if section != profile {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Credentials{}, fmt.Errorf("line %d: expected key = value", lineNo)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "aws_access_key_id":
			creds.AccessKeyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			creds.SecretAccessKey = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return Credentials{}, err
	}
	if !found {
		return Credentials{}, fmt.Errorf("no profile [%s]", profile)
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return Credentials{}, fmt.Errorf("profile [%s] lacks aws_access_key_id or aws_secret_access_key", profile)
	}
	return creds, nil
}

// loadCredentials resolves the credentials the CLI signs with: the
// environment (KINDLING_ACCESS_KEY_ID and KINDLING_SECRET_ACCESS_KEY, both
// set) wins; else the file (profile kindling).
func loadCredentials(getenv func(string) string, file string) (Credentials, error) {
	id, secret := getenv("KINDLING_ACCESS_KEY_ID"), getenv("KINDLING_SECRET_ACCESS_KEY")
	if id != "" && secret != "" {
		return Credentials{id, secret}, nil
	}
	if id != "" || secret != "" {
		return Credentials{}, fmt.Errorf("set both KINDLING_ACCESS_KEY_ID and KINDLING_SECRET_ACCESS_KEY, or neither")
	}
	f, err := os.Open(file)
	if err != nil {
		return Credentials{}, fmt.Errorf("reading credentials: %w", err)
	}
	defer f.Close()
	creds, err := ParseCredentialsFile(f, credentialsProfile)
	if err != nil {
		return Credentials{}, fmt.Errorf("%s: %w", file, err)
	}
	return creds, nil
}
