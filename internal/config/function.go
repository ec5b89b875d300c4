package config

import (
	"fmt"
	"time"
)

// Function is the stored configuration of one function's $LATEST or of one
// of its published versions (Version "1", "2", ...; see versions.go). It is what the config service keeps in
// JetStream KV, JSON-encoded. Values are immutable once read: writers
// build a new Function and store it with a compare-and-swap on the revision.
type Function struct {
	// Account is the 12-digit AWS account id owning the function.
	Account string `json:"account"`
	// Region is the region in the function's ARN.
	Region string `json:"region"`
	// Name is the function name (1-64 of [a-zA-Z0-9-_]).
	Name string `json:"name"`
	// Version is "$LATEST" or a published version number.
	Version string `json:"version"`

	Runtime       string            `json:"runtime"`
	Handler       string            `json:"handler,omitempty"`
	Role          string            `json:"role"`
	Description   string            `json:"description,omitempty"`
	MemoryMB      int               `json:"memoryMB"`
	TimeoutSec    int               `json:"timeoutSec"`
	EphemeralMB   int               `json:"ephemeralMB"`
	Env           map[string]string `json:"env,omitempty"`
	Architectures []string          `json:"architectures,omitempty"`
	PackageType   string            `json:"packageType"`
	// Tags are the function's resource tags (CreateFunction's Tags).
	Tags map[string]string `json:"tags,omitempty"`
	// ReservedConcurrency is the function's reserved concurrency
	// (PutFunctionConcurrency), on $LATEST only; nil: none.
	ReservedConcurrency *int `json:"reservedConcurrency,omitempty"`
	// Provisioned holds the provisioned concurrency configurations, by
	// qualifier (a version or an alias), on $LATEST only.
	Provisioned map[string]ProvisionedConfig `json:"provisioned,omitempty"`
	// DeadLetterTarget is DeadLetterConfig.TargetArn: the SQS queue that
	// failed asynchronous events go to when no OnFailure destination is
	// configured ("" for none).
	DeadLetterTarget string `json:"deadLetterTarget,omitempty"`

	// SnapStartApplyOn is SnapStart.ApplyOn: "PublishedVersions" or ""
	// (None). Versions keep the value they were published with.
	SnapStartApplyOn string `json:"snapStartApplyOn,omitempty"`
	// SnapStartOn, on a version only, is its SnapStart OptimizationStatus:
	// true when it was published with ApplyOn PublishedVersions on a
	// server whose sandboxes can be snapshotted. Such a version is Pending
	// until its snapshot is made, then Active, or Failed when making it
	// failed.
	SnapStartOn bool `json:"snapStartOn,omitempty"`
	// Snapshot, on a version with SnapStartOn, is the key of its snapshot
	// in the snapshot store once made ("" before).
	Snapshot string `json:"snapshot,omitempty"`

	// CodeSha256 is the base64 SHA-256 of the deployment package, as
	// Lambda reports it; CodeKey names the package in the code store (hex
	// SHA-256).
	CodeSha256 string `json:"codeSha256"`
	CodeKey    string `json:"codeKey"`
	CodeSize   int64  `json:"codeSize"`

	// RevisionID changes on every update of this record.
	RevisionID   string    `json:"revisionId"`
	LastModified time.Time `json:"lastModified"`

	// ContentRevision changes with every code or configuration update of
	// $LATEST (Create, Update), not with state transitions or publishes. A
	// published version keeps the one of the $LATEST it was copied from,
	// which is how PublishVersion tells that nothing changed since.
	ContentRevision string `json:"contentRevision,omitempty"`
	// LastVersion, on $LATEST only, is the number of the last version
	// published (0: none). Numbers are never reused, even after the
	// version is deleted (see versions.go).
	LastVersion int `json:"lastVersion,omitempty"`

	// State machine (see states.go): State, StateReason, StateReasonCode,
	// LastUpdateStatus and its reason.
	State                      string `json:"state"`
	StateReason                string `json:"stateReason,omitempty"`
	StateReasonCode            string `json:"stateReasonCode,omitempty"`
	LastUpdateStatus           string `json:"lastUpdateStatus"`
	LastUpdateStatusReason     string `json:"lastUpdateStatusReason,omitempty"`
	LastUpdateStatusReasonCode string `json:"lastUpdateStatusReasonCode,omitempty"`
}

// ARN returns the unqualified function ARN.
func (f *Function) ARN() string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", f.Region, f.Account, f.Name)
}

// QualifiedARN returns the ARN qualified with the version.
func (f *Function) QualifiedARN() string {
	return f.ARN() + ":" + f.Version
}

// ProvisionedConfig is one provisioned concurrency configuration.
type ProvisionedConfig struct {
	Requested    int       `json:"requested"`
	LastModified time.Time `json:"lastModified"`
}

// ProvisionedTotal is the sum of the function's provisioned concurrency.
func (f *Function) ProvisionedTotal() int {
	n := 0
	for _, p := range f.Provisioned {
		n += p.Requested
	}
	return n
}
