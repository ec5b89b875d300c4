package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"kindling/internal/accounts"
)

// cmdAccount runs `kindling account create NAME` and `kindling account
// list`: the server's admin endpoint (internal/accounts), signed with SigV4
// for the service "kindling" by the root credentials. A new account's key
// pair is printed once, as a shared-credentials profile named after it.
func cmdAccount(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("account", g, stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: want create NAME or list", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	switch pos[0] {
	case "create":
		if err := wantArgs(pos[1:], 1, "create NAME"); err != nil {
			return err
		}
		body, err := json.Marshal(accounts.CreateInput{Name: pos[1]})
		if err != nil {
			return err
		}
		var a accounts.Output
		if err := g.admin(ctx, http.MethodPost, "accounts", body, &a); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "# account %s: %s (created %s)\n[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
			a.Name, a.AccountID, a.Created, a.Name, a.AccessKeyID, a.SecretAccessKey)
		return nil
	case "list":
		if err := wantArgs(pos[1:], 0, "list"); err != nil {
			return err
		}
		var out accounts.ListOutput
		if err := g.admin(ctx, http.MethodGet, "accounts", nil, &out); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tACCOUNT ID\tACCESS KEY ID\tCREATED")
		for _, a := range out.Accounts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.AccountID, a.AccessKeyID, a.Created)
		}
		return tw.Flush()
	}
	return fmt.Errorf("%w: unknown account command %q (want create or list)", errUsage, pos[0])
}

// adminError is an error answer of the admin endpoint.
type adminError struct {
	Status        int
	Type, Message string
}

func (e *adminError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Type, e.Message, e.Status)
}

// admin sends one signed request to the admin endpoint's path (below
// accounts.PathPrefix) and decodes the answer into out.
func (g *globals) admin(ctx context.Context, method, path string, body []byte, out any) error {
	file := g.credentialsFile
	if file == "" {
		file = filepath.Join(g.dataDir, "credentials")
	}
	creds, err := loadCredentials(g.getenv, file)
	if err != nil {
		return err
	}
	url := strings.TrimRight(g.endpoint, "/") + accounts.PathPrefix + path
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey},
		req, hex.EncodeToString(sum[:]), accounts.ServiceName, g.region, time.Now())
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Message  string `json:"Message"`
			LMessage string `json:"message"`
		}
		json.Unmarshal(data, &e) //nolint:errcheck // the status and type say enough without it
		msg := e.Message + e.LMessage
		if msg == "" {
			msg = strings.TrimSpace(string(data))
		}
		return &adminError{Status: resp.StatusCode, Type: resp.Header.Get("X-Amzn-ErrorType"), Message: msg}
	}
	return json.Unmarshal(data, out)
}

// SnapshotsReport is the admin endpoint's "snapshots" report: the SnapStart
// snapshots the server keeps and what they cost.
type SnapshotsReport struct {
	Snapshots []SnapshotEntry `json:"Snapshots"`
	// TotalBytes is the disk use of every snapshot.
	TotalBytes int64 `json:"TotalBytes"`
	// Restores and RestoreFailures count environments started from a
	// snapshot, and snapshots that could not be used (a normal cold start
	// ran instead), since the server started.
	Restores        uint64 `json:"Restores"`
	RestoreFailures uint64 `json:"RestoreFailures"`
}

// SnapshotEntry is one snapshot in a SnapshotsReport.
type SnapshotEntry struct {
	Key      string `json:"Key"`
	Account  string `json:"Account"`
	Function string `json:"Function"`
	Version  string `json:"Version"`
	Bytes    int64  `json:"Bytes"`
	Pieces   int    `json:"Pieces"`
	Created  string `json:"Created"`
}

// cmdSnapshots runs `kindling snapshots`: the admin endpoint's snapshots
// report as a table.
func cmdSnapshots(ctx context.Context, g *globals, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshots", g, stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var out SnapshotsReport
	if err := g.admin(ctx, http.MethodGet, "snapshots", nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tVERSION\tACCOUNT\tBYTES\tPIECES\tCREATED")
	for _, s := range out.Snapshots {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", s.Function, s.Version, s.Account, s.Bytes, s.Pieces, s.Created)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d snapshots, %d bytes on disk; %d restores, %d unusable snapshots since the server started\n",
		len(out.Snapshots), out.TotalBytes, out.Restores, out.RestoreFailures)
	return nil
}
