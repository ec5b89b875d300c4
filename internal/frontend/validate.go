package frontend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"kindling/internal/awsapi"
	"kindling/internal/config"
)

// Limits of a function's configuration (Lambda's).
const (
	minMemoryMB, maxMemoryMB       = 128, 10240
	minTimeoutSec, maxTimeoutSec   = 1, 900
	minEphemeralMB, maxEphemeralMB = 512, 10240
	maxDescription                 = 256
	maxHandler                     = 128
	maxEnvBytes                    = 4096
	maxTags                        = 50

	defaultMemoryMB    = 128
	defaultTimeoutSec  = 3
	defaultEphemeralMB = 512
)

// Supported runtimes: Kindling runs custom runtimes (a bootstrap executable
// in the package), on Amazon Linux 2023 or 2 as Lambda names them.
var supportedRuntimes = []string{"provided.al2023", "provided.al2"}

// deprecatedRuntimes are runtimes Lambda no longer accepts at all.
var deprecatedRuntimes = map[string]bool{
	"provided": true, "go1.x": true, "python2.7": true, "python3.6": true, "python3.7": true,
	"python3.8": true, "nodejs": true, "nodejs4.3": true, "nodejs4.3-edge": true, "nodejs6.10": true,
	"nodejs8.10": true, "nodejs10.x": true, "nodejs12.x": true, "nodejs14.x": true, "nodejs16.x": true,
	"dotnetcore1.0": true, "dotnetcore2.0": true, "dotnetcore2.1": true, "dotnetcore3.1": true,
	"dotnet6": true, "ruby2.5": true, "ruby2.7": true, "java8": true,
}

// managedRuntimes are Lambda's current managed runtimes, which Kindling does
// not provide.
var managedRuntimes = map[string]bool{
	"nodejs18.x": true, "nodejs20.x": true, "nodejs22.x": true, "python3.9": true, "python3.10": true,
	"python3.11": true, "python3.12": true, "python3.13": true, "java11": true, "java17": true,
	"java21": true, "java8.al2": true, "dotnet8": true, "ruby3.2": true, "ruby3.3": true,
}

// reservedEnv are the environment variables Lambda sets itself and refuses
// in a function's configuration.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_DEFAULT_REGION": true, "AWS_REGION": true,
	"AWS_EXECUTION_ENV": true, "AWS_LAMBDA_FUNCTION_NAME": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_INITIALIZATION_TYPE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "AWS_ACCESS_KEY": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_LAMBDA_RUNTIME_API": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
}

const (
	rolePatternText   = `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`
	envKeyPatternText = `[a-zA-Z]([a-zA-Z0-9_])+`
)

var roleRE = regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:iam::[0-9]{12}:role/?[a-zA-Z_0-9+=,.@/-]+$`)

// hostArchitecture is the Lambda name of the machine's architecture, the
// only one Kindling can run.
var hostArchitecture = map[string]string{"amd64": "x86_64", "arm64": "arm64"}[runtime.GOARCH]

// invalidParam is an InvalidParameterValueException.
func invalidParam(format string, args ...any) error {
	return &awsapi.Error{Status: http.StatusBadRequest, Type: awsapi.TypeInvalidParameterValue,
		Message: fmt.Sprintf(format, args...)}
}

// decodeJSON decodes a request body; malformed JSON is the client's fault.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &awsapi.Error{Status: http.StatusBadRequest, Type: awsapi.TypeInvalidRequestContent,
			Message: "Could not parse request body into json: " + shorten(err.Error())}
	}
	return nil
}

// snapStartNone is SnapStart.ApplyOn's "off" value (stored as "").
const snapStartNone = "None"

// settings are the configuration members Create and UpdateConfiguration
// share; nil means "not given".
type settings struct {
	Role, Handler, Description, Runtime *string
	Timeout, MemorySize, Ephemeral      *int
	EphemeralGiven                      bool
	Env                                 *awsapi.Environment
	VpcConfig                           *awsapi.VpcConfig
	TracingConfig                       *awsapi.TracingConfig
	SnapStart                           *awsapi.SnapStart
	LoggingConfig                       *awsapi.LoggingConfig
	DeadLetterConfig                    *awsapi.DeadLetterConfig
	Layers                              []string
	KMSKeyArn                           string
	FileSystemConfigs                   []any
	ImageConfig                         any
}

// modelViolations checks the API model's constraints (Lambda reports all of
// them at once as a ValidationException).
func (s *settings) modelViolations() []string {
	var v []string
	if s.Role != nil && !roleRE.MatchString(*s.Role) {
		v = append(v, config.Violation(shorten(*s.Role), "role", "Member must satisfy regular expression pattern: "+rolePatternText))
	}
	if s.Handler != nil {
		h := *s.Handler
		if len(h) > maxHandler {
			v = append(v, config.Violation(shorten(h), "handler", fmt.Sprintf("Member must have length less than or equal to %d", maxHandler)))
		}
		if h == "" || strings.ContainsAny(h, " \t\r\n\f\v") {
			v = append(v, config.Violation(shorten(h), "handler", `Member must satisfy regular expression pattern: [^\s]+`))
		}
	}
	if s.Description != nil && len(*s.Description) > maxDescription {
		v = append(v, config.Violation(shorten(*s.Description), "description", fmt.Sprintf("Member must have length less than or equal to %d", maxDescription)))
	}
	v = appendRange(v, s.Timeout, "timeout", minTimeoutSec, maxTimeoutSec)
	v = appendRange(v, s.MemorySize, "memorySize", minMemoryMB, maxMemoryMB)
	v = appendRange(v, s.Ephemeral, "ephemeralStorage.size", minEphemeralMB, maxEphemeralMB)
	if s.EphemeralGiven && s.Ephemeral == nil {
		v = append(v, "Value null at 'ephemeralStorage.size' failed to satisfy constraint: Member must not be null")
	}
	if s.SnapStart != nil {
		switch a := s.SnapStart.ApplyOn; a {
		case "", snapStartNone, config.SnapStartPublishedVersions:
		default:
			v = append(v, config.Violation(shorten(a), "snapStart.applyOn",
				"Member must satisfy enum value set: [PublishedVersions, None]"))
		}
	}
	if s.Env != nil {
		for k := range s.Env.Variables {
			if !validEnvKey(k) {
				v = append(v, "Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "+envKeyPatternText+"]")
				break
			}
		}
	}
	return v
}

func appendRange(v []string, n *int, field string, lo, hi int) []string {
	switch {
	case n == nil:
	case *n < lo:
		v = append(v, config.Violation(fmt.Sprint(*n), field, fmt.Sprintf("Member must have value greater than or equal to %d", lo)))
	case *n > hi:
		v = append(v, config.Violation(fmt.Sprint(*n), field, fmt.Sprintf("Member must have value less than or equal to %d", hi)))
	}
	return v
}

func validEnvKey(k string) bool {
	if k == "" || !(k[0] >= 'a' && k[0] <= 'z' || k[0] >= 'A' && k[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// check checks what the model cannot: supported values and Lambda's own
// rules (runtime, environment, unsupported features).
func (s *settings) check() error {
	if s.Runtime != nil {
		if err := checkRuntime(*s.Runtime); err != nil {
			return err
		}
	}
	if s.Env != nil {
		if err := checkEnv(s.Env.Variables); err != nil {
			return err
		}
	}
	if s.VpcConfig != nil && (len(s.VpcConfig.SubnetIds) > 0 || len(s.VpcConfig.SecurityGroupIds) > 0) {
		return invalidParam("VpcConfig is not supported by Kindling: functions cannot be attached to a VPC.")
	}
	if s.TracingConfig != nil && s.TracingConfig.Mode != "" && s.TracingConfig.Mode != "PassThrough" {
		return invalidParam("TracingConfig mode %s is not supported by Kindling; use PassThrough.", shorten(s.TracingConfig.Mode))
	}
	if lc := s.LoggingConfig; lc != nil {
		if lc.LogFormat != "" && lc.LogFormat != "Text" {
			return invalidParam("LoggingConfig LogFormat %s is not supported by Kindling; use Text.", shorten(lc.LogFormat))
		}
		if lc.LogGroup != "" || lc.ApplicationLogLevel != "" || lc.SystemLogLevel != "" {
			return invalidParam("LoggingConfig LogGroup and log levels are not supported by Kindling.")
		}
	}
	if err := checkDeadLetter(s.DeadLetterConfig); err != nil {
		return err
	}
	if len(s.Layers) > 0 {
		return invalidParam("Layers are not supported by Kindling.")
	}
	if s.KMSKeyArn != "" {
		return invalidParam("KMSKeyArn is not supported by Kindling.")
	}
	if len(s.FileSystemConfigs) > 0 {
		return invalidParam("FileSystemConfigs are not supported by Kindling.")
	}
	if s.ImageConfig != nil {
		return invalidParam("ImageConfig is not supported by Kindling: container images are not supported.")
	}
	return nil
}

func checkRuntime(rt string) error {
	if slices.Contains(supportedRuntimes, rt) {
		return nil
	}
	list := "[" + strings.Join(supportedRuntimes, ", ") + "]"
	switch {
	case deprecatedRuntimes[rt]:
		return invalidParam("The runtime parameter of %s is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions.", rt)
	case managedRuntimes[rt]:
		return invalidParam("The runtime parameter of %s is not supported by Kindling, which runs custom runtimes only. Supported runtimes: %s", rt, list)
	}
	return invalidParam("Value %s at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: %s or be a valid ARN", shorten(rt), list)
}

// checkEnv applies Lambda's reserved keys and 4 KB limit (measured as the
// compact JSON of the variables).
func checkEnv(vars map[string]string) error {
	var reserved []string
	for k := range vars {
		if reservedEnv[k] {
			reserved = append(reserved, k)
		}
	}
	if len(reserved) > 0 {
		slices.Sort(reserved)
		return invalidParam("Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: %s", strings.Join(reserved, ", "))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(vars); err != nil {
		return err
	}
	measured := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(measured) > maxEnvBytes {
		return invalidParam("Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: %s", measured)
	}
	return nil
}

// checkArchitectures validates an Architectures member: one item, one of
// Lambda's two, and the machine's own.
func checkArchitectures(archs []string) error {
	if archs == nil {
		return nil
	}
	if len(archs) != 1 {
		return config.NewValidationError(config.Violation(fmt.Sprint(archs), "architectures",
			"Member must have length less than or equal to 1"))
	}
	a := archs[0]
	if a != "x86_64" && a != "arm64" {
		return config.NewValidationError(config.Violation(fmt.Sprint(archs), "architectures",
			"Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]"))
	}
	if a != hostArchitecture {
		return invalidParam("Architecture %s is not supported by this Kindling server, which runs %s.", a, hostArchitecture)
	}
	return nil
}

// checkRevision is UpdateFunction*'s RevisionId precondition.
func checkRevision(want string, f *config.Function) error {
	if want != "" && want != f.RevisionID {
		return &awsapi.Error{Status: http.StatusPreconditionFailed, Type: awsapi.TypePreconditionFailed,
			Message: "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"}
	}
	return nil
}
