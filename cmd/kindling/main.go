// Command kindling is Kindling's one binary: the server (every component
// wired together in one process) and the user CLI.
//
//	kindling server [flags]       serve the Lambda API on one port
//	kindling deploy|invoke|list|delete ...   the user CLI (see internal/cli)
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"kindling/internal/cli"
)

const usage = `kindling: a self-hostable, Lambda-compatible serverless platform

Usage:
  kindling server [--listen 127.0.0.1:9000] [--data-dir DIR] [--sandbox auto|gvisor|process] ...
  kindling deploy NAME PATH [--memory MB] [--timeout S] [--env K=V]...
  kindling invoke NAME [--payload JSON|@FILE]
  kindling list
  kindling delete NAME
  kindling account create NAME | account list

Run "kindling server -h" or "kindling CMD -h" for the flags of a command.
`

func main() {
	// Started under the agent's name (a sandbox backend copied or linked
	// this binary as its agent), be the agent, as "kindling agent" does.
	if filepath.Base(os.Args[0]) == "kindling-agent" {
		agentMain()
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		os.Exit(serverMain(os.Args[2:]))
	case "agent":
		// The agent, when no kindling-agent binary sits next to this one.
		agentMain()
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
	}
}
