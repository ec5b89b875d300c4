// Command kindling-agent is the first process in every sandbox: it serves
// the Lambda Runtime API to the function's runtime and talks to its worker.
// The program is agent.Main; this file only calls it.
//
// It is a small static binary: build it with CGO_ENABLED=0.
package main

import "kindling/internal/agent"

func main() { agent.Main() }
