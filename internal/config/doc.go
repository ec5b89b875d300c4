// Package config is the config service: the durable table of functions,
// their published versions and aliases (and, later, concurrency settings)
// that the frontend writes and the data plane reads.
//
// Functions live in the JetStream KV bucket "kindling-functions" (file
// storage; replicated when the NATS cluster is), one key per function
// version ($LATEST and each published version, versions.go) and per alias
// (aliases.go), keyed by account so that every lookup is scoped to the caller's
// account (see store.go for the key layout). Values are versioned JSON
// records. Writers never overwrite blindly: Update reads, mutates a copy
// and writes with a compare-and-swap on the KV revision, retrying when
// another writer (another frontend) won. The Lookup cache follows changes
// with a KV watch, so the invoke path reads configuration from memory; the
// data plane retires environments of older revisions when it first sees a
// newer one.
//
// Also here, because every component needs them the same way:
//
//   - names.go: parsing of the FunctionName parameter (names, partial and
//     full ARNs, qualifiers) with Lambda's constraints and messages;
//   - states.go: the pure state machine of State and LastUpdateStatus;
//   - aliases.go: the pure alias rules (names, routing checks, and
//     PickVersion, the weighted choice of a version from a random draw).
//
// Errors are errdefs classes wrapped with %w, the text after the class
// being Lambda's message ("not found: Function not found: arn:..."), plus
// two typed errors the API edge maps to their own AWS types:
// *ValidationError (ValidationException) and *AccessDeniedError.
package config
