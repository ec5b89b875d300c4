package awsapi

import (
	"time"

	"kindling/internal/config"
)

// Lambda's wire shapes (REST-JSON, API version 2015-03-31), as Kindling
// sends and reads them. Field names and nesting follow the Lambda API
// reference; only the members Kindling implements or must answer are here.
// Request members that Kindling does not support are decoded so that the
// frontend can refuse non-default values instead of silently ignoring them.

// LastModifiedFormat is the layout of FunctionConfiguration.LastModified.
const LastModifiedFormat = "2006-01-02T15:04:05.000-0700"

// FormatLastModified formats t the way Lambda does ("...T12:34:56.789+0000").
func FormatLastModified(t time.Time) string {
	return t.UTC().Format(LastModifiedFormat)
}

// EnvironmentResponse is FunctionConfiguration.Environment.
type EnvironmentResponse struct {
	Variables map[string]string `json:"Variables"`
}

// TracingConfigResponse is FunctionConfiguration.TracingConfig.
type TracingConfigResponse struct {
	Mode string `json:"Mode"`
}

// EphemeralStorage is the size of /tmp in MB.
type EphemeralStorage struct {
	Size int `json:"Size"`
}

// LoggingConfig is FunctionConfiguration.LoggingConfig.
type LoggingConfig struct {
	LogFormat           string `json:"LogFormat,omitempty"`
	ApplicationLogLevel string `json:"ApplicationLogLevel,omitempty"`
	SystemLogLevel      string `json:"SystemLogLevel,omitempty"`
	LogGroup            string `json:"LogGroup,omitempty"`
}

// SnapStartResponse is FunctionConfiguration.SnapStart.
type SnapStartResponse struct {
	ApplyOn            string `json:"ApplyOn"`
	OptimizationStatus string `json:"OptimizationStatus"`
}

// NewSnapStartResponse renders f's SnapStart setting as Lambda reports it:
// ApplyOn "PublishedVersions" or "None"; OptimizationStatus "On" for a
// published version made with SnapStart (Function.SnapStartOn), else
// "Off" ($LATEST always: SnapStart applies to published versions only).
func NewSnapStartResponse(f *config.Function) *SnapStartResponse {
	r := &SnapStartResponse{ApplyOn: "None", OptimizationStatus: "Off"}
	if f.SnapStartApplyOn == config.SnapStartPublishedVersions {
		r.ApplyOn = config.SnapStartPublishedVersions
	}
	if f.SnapStartOn && f.Version != config.LatestVersion && f.Version != "" {
		r.OptimizationStatus = "On"
	}
	return r
}

// FunctionConfiguration is what GetFunctionConfiguration, CreateFunction
// and the Update operations return, and the elements of ListFunctions.
type FunctionConfiguration struct {
	FunctionName               string                 `json:"FunctionName"`
	FunctionArn                string                 `json:"FunctionArn"`
	Runtime                    string                 `json:"Runtime,omitempty"`
	Role                       string                 `json:"Role"`
	Handler                    string                 `json:"Handler,omitempty"`
	CodeSize                   int64                  `json:"CodeSize"`
	Description                string                 `json:"Description"`
	Timeout                    int                    `json:"Timeout"`
	MemorySize                 int                    `json:"MemorySize"`
	LastModified               string                 `json:"LastModified"`
	CodeSha256                 string                 `json:"CodeSha256"`
	Version                    string                 `json:"Version"`
	Environment                *EnvironmentResponse   `json:"Environment,omitempty"`
	TracingConfig              *TracingConfigResponse `json:"TracingConfig,omitempty"`
	RevisionId                 string                 `json:"RevisionId"`
	State                      string                 `json:"State,omitempty"`
	StateReason                string                 `json:"StateReason,omitempty"`
	StateReasonCode            string                 `json:"StateReasonCode,omitempty"`
	LastUpdateStatus           string                 `json:"LastUpdateStatus,omitempty"`
	LastUpdateStatusReason     string                 `json:"LastUpdateStatusReason,omitempty"`
	LastUpdateStatusReasonCode string                 `json:"LastUpdateStatusReasonCode,omitempty"`
	PackageType                string                 `json:"PackageType"`
	Architectures              []string               `json:"Architectures"`
	EphemeralStorage           *EphemeralStorage      `json:"EphemeralStorage,omitempty"`
	SnapStart                  *SnapStartResponse     `json:"SnapStart,omitempty"`
	LoggingConfig              *LoggingConfig         `json:"LoggingConfig,omitempty"`
	DeadLetterConfig           *DeadLetterConfig      `json:"DeadLetterConfig,omitempty"`
}

// FunctionCodeLocation is GetFunction's Code.
type FunctionCodeLocation struct {
	RepositoryType string `json:"RepositoryType"`
	Location       string `json:"Location,omitempty"`
}

// GetFunctionOutput is GetFunction's response.
type GetFunctionOutput struct {
	Configuration FunctionConfiguration `json:"Configuration"`
	Code          FunctionCodeLocation  `json:"Code"`
	Tags          map[string]string     `json:"Tags,omitempty"`
	Concurrency   *Concurrency          `json:"Concurrency,omitempty"`
}

// Concurrency is a function's reserved concurrency.
type Concurrency struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

// ListFunctionsOutput is ListFunctions' response.
type ListFunctionsOutput struct {
	Functions  []FunctionConfiguration `json:"Functions"`
	NextMarker string                  `json:"NextMarker,omitempty"`
}

// LogGroup returns the log group Lambda names for a function.
func LogGroup(name string) string { return "/aws/lambda/" + name }

// NewFunctionConfiguration renders f as Lambda reports it.
func NewFunctionConfiguration(f *config.Function) FunctionConfiguration {
	c := FunctionConfiguration{
		FunctionName:               f.Name,
		FunctionArn:                f.ARN(),
		Runtime:                    f.Runtime,
		Role:                       f.Role,
		Handler:                    f.Handler,
		CodeSize:                   f.CodeSize,
		Description:                f.Description,
		Timeout:                    f.TimeoutSec,
		MemorySize:                 f.MemoryMB,
		LastModified:               FormatLastModified(f.LastModified),
		CodeSha256:                 f.CodeSha256,
		Version:                    f.Version,
		TracingConfig:              &TracingConfigResponse{Mode: "PassThrough"},
		RevisionId:                 f.RevisionID,
		State:                      f.State,
		StateReason:                f.StateReason,
		StateReasonCode:            f.StateReasonCode,
		LastUpdateStatus:           f.LastUpdateStatus,
		LastUpdateStatusReason:     f.LastUpdateStatusReason,
		LastUpdateStatusReasonCode: f.LastUpdateStatusReasonCode,
		PackageType:                f.PackageType,
		Architectures:              f.Architectures,
		EphemeralStorage:           &EphemeralStorage{Size: f.EphemeralMB},
		SnapStart:                  NewSnapStartResponse(f),
		LoggingConfig:              &LoggingConfig{LogFormat: "Text", LogGroup: LogGroup(f.Name)},
	}
	if c.Version == "" {
		c.Version = config.LatestVersion
	}
	if c.PackageType == "" {
		c.PackageType = "Zip"
	}
	if len(c.Architectures) == 0 {
		c.Architectures = []string{"x86_64"}
	}
	if len(f.Env) > 0 {
		c.Environment = &EnvironmentResponse{Variables: f.Env}
	}
	if f.DeadLetterTarget != "" {
		c.DeadLetterConfig = &DeadLetterConfig{TargetArn: f.DeadLetterTarget}
	}
	return c
}

// Request shapes.

// FunctionCode is CreateFunction's Code.
type FunctionCode struct {
	// ZipFile is the base64-decoded deployment package.
	ZipFile         []byte `json:"ZipFile"`
	S3Bucket        string `json:"S3Bucket"`
	S3Key           string `json:"S3Key"`
	S3ObjectVersion string `json:"S3ObjectVersion"`
	ImageUri        string `json:"ImageUri"`
	SourceKMSKeyArn string `json:"SourceKMSKeyArn"`
}

// Environment is a request's Environment.
type Environment struct {
	Variables map[string]string `json:"Variables"`
}

// EphemeralStorageInput is a request's EphemeralStorage.
type EphemeralStorageInput struct {
	Size *int `json:"Size"`
}

// VpcConfig is a request's VpcConfig.
type VpcConfig struct {
	SubnetIds        []string `json:"SubnetIds"`
	SecurityGroupIds []string `json:"SecurityGroupIds"`
}

// TracingConfig is a request's TracingConfig.
type TracingConfig struct {
	Mode string `json:"Mode"`
}

// SnapStart is a request's SnapStart.
type SnapStart struct {
	ApplyOn string `json:"ApplyOn"`
}

// DeadLetterConfig is a request's DeadLetterConfig.
type DeadLetterConfig struct {
	TargetArn string `json:"TargetArn"`
}

// CreateFunctionInput is CreateFunction's request body.
type CreateFunctionInput struct {
	FunctionName         *string                `json:"FunctionName"`
	Runtime              string                 `json:"Runtime"`
	Role                 *string                `json:"Role"`
	Handler              string                 `json:"Handler"`
	Code                 *FunctionCode          `json:"Code"`
	Description          *string                `json:"Description"`
	Timeout              *int                   `json:"Timeout"`
	MemorySize           *int                   `json:"MemorySize"`
	Publish              bool                   `json:"Publish"`
	PackageType          string                 `json:"PackageType"`
	Environment          *Environment           `json:"Environment"`
	Architectures        []string               `json:"Architectures"`
	EphemeralStorage     *EphemeralStorageInput `json:"EphemeralStorage"`
	Tags                 map[string]string      `json:"Tags"`
	VpcConfig            *VpcConfig             `json:"VpcConfig"`
	TracingConfig        *TracingConfig         `json:"TracingConfig"`
	SnapStart            *SnapStart             `json:"SnapStart"`
	LoggingConfig        *LoggingConfig         `json:"LoggingConfig"`
	DeadLetterConfig     *DeadLetterConfig      `json:"DeadLetterConfig"`
	Layers               []string               `json:"Layers"`
	KMSKeyArn            string                 `json:"KMSKeyArn"`
	CodeSigningConfigArn string                 `json:"CodeSigningConfigArn"`
	FileSystemConfigs    []any                  `json:"FileSystemConfigs"`
	ImageConfig          any                    `json:"ImageConfig"`
}

// UpdateFunctionConfigurationInput is UpdateFunctionConfiguration's body.
// Absent members leave the setting unchanged.
type UpdateFunctionConfigurationInput struct {
	Role              *string                `json:"Role"`
	Handler           *string                `json:"Handler"`
	Description       *string                `json:"Description"`
	Timeout           *int                   `json:"Timeout"`
	MemorySize        *int                   `json:"MemorySize"`
	Environment       *Environment           `json:"Environment"`
	Runtime           *string                `json:"Runtime"`
	EphemeralStorage  *EphemeralStorageInput `json:"EphemeralStorage"`
	RevisionId        string                 `json:"RevisionId"`
	VpcConfig         *VpcConfig             `json:"VpcConfig"`
	TracingConfig     *TracingConfig         `json:"TracingConfig"`
	SnapStart         *SnapStart             `json:"SnapStart"`
	LoggingConfig     *LoggingConfig         `json:"LoggingConfig"`
	DeadLetterConfig  *DeadLetterConfig      `json:"DeadLetterConfig"`
	Layers            []string               `json:"Layers"`
	KMSKeyArn         *string                `json:"KMSKeyArn"`
	FileSystemConfigs []any                  `json:"FileSystemConfigs"`
	ImageConfig       any                    `json:"ImageConfig"`
}

// UpdateFunctionCodeInput is UpdateFunctionCode's body.
type UpdateFunctionCodeInput struct {
	ZipFile         []byte   `json:"ZipFile"`
	S3Bucket        string   `json:"S3Bucket"`
	S3Key           string   `json:"S3Key"`
	S3ObjectVersion string   `json:"S3ObjectVersion"`
	ImageUri        string   `json:"ImageUri"`
	Publish         bool     `json:"Publish"`
	DryRun          bool     `json:"DryRun"`
	RevisionId      string   `json:"RevisionId"`
	Architectures   []string `json:"Architectures"`
	SourceKMSKeyArn string   `json:"SourceKMSKeyArn"`
}
