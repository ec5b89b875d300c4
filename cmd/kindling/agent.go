package main

import "kindling/internal/agent"

// agentMain runs this binary as a sandbox's agent ("kindling agent"): the
// fallback when no kindling-agent binary sits next to it.
func agentMain() { agent.Main() }
