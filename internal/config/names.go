package config

import (
	"fmt"
	"regexp"
	"strings"

	"kindling/internal/errdefs"
)

// LatestVersion is the version name of a function's unpublished
// configuration.
const LatestVersion = "$LATEST"

// NameRule is the FunctionName constraint of one API operation. Lambda's
// operations differ in the maximum length and in whether the name part may
// hold dots (lookups accept them; such names can never exist).
type NameRule struct {
	// MaxLen bounds the whole parameter (name or ARN).
	MaxLen int
	// NameOnlyMax, when not 0, bounds a parameter that is a bare name.
	NameOnlyMax int
	// Dots allows '.' in the name part.
	Dots bool
}

// The rules of the function operations.
var (
	// RuleCreate: CreateFunction (a bare name is at most 64 characters).
	RuleCreate = NameRule{MaxLen: 140, NameOnlyMax: MaxNameLen}
	// RuleManage: DeleteFunction, UpdateFunctionCode,
	// UpdateFunctionConfiguration.
	RuleManage = NameRule{MaxLen: 140}
	// RuleRead: GetFunction, GetFunctionConfiguration, Invoke.
	RuleRead = NameRule{MaxLen: 170, Dots: true}
)

// MaxNameLen is the longest function name.
const MaxNameLen = 64

// The FunctionName pattern as Lambda states it in validation messages
// (Java regular-expression syntax), without and with dots in the name.
const (
	namePatternText      = `(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`
	namePatternTextDots  = `(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`
	qualifierPatternText = `(|[a-zA-Z0-9$_-]+)`
)

// The same patterns for matching, anchored, with the parts named.
var (
	nameRE     = regexp.MustCompile(`^(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?(?:(?P<region>[a-z]{2}(?:(?:-gov)|(?:-iso[a-z]?))?-[a-z]+-[0-9]):)?(?:(?P<account>[0-9]{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$`)
	nameDotsRE = regexp.MustCompile(`^(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?(?:(?P<region>[a-z]{2}(?:(?:-gov)|(?:-iso[a-z]?))?-[a-z]+-[0-9]):)?(?:(?P<account>[0-9]{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$`)
)

// FunctionRef is a parsed FunctionName parameter: a name, a partial ARN
// (ACCOUNT:function:NAME), a full ARN, each optionally with a :QUALIFIER.
type FunctionRef struct {
	// Name is the function name.
	Name string
	// Qualifier is the version or alias, "" when none was given.
	Qualifier string
	// Account is the account in an ARN, "" when none was given.
	Account string
	// Region is the region in a full ARN, "" when none was given.
	Region string
}

// ValidationError is a request value that fails one of the API model's
// constraints (pattern, length, range). Lambda answers these with
// ValidationException; Message is its exact text. It is an
// errdefs.ErrInvalid.
type ValidationError struct {
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

// Unwrap makes a ValidationError an errdefs.ErrInvalid.
func (e *ValidationError) Unwrap() error { return errdefs.ErrInvalid }

// Violation formats one constraint violation the way Lambda's model
// validation words it.
func Violation(value, field, constraint string) string {
	return fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint)
}

// NewValidationError joins violations (see Violation) into one
// ValidationError, or returns nil when there are none.
func NewValidationError(violations ...string) error {
	if len(violations) == 0 {
		return nil
	}
	plural := ""
	if len(violations) > 1 {
		plural = "s"
	}
	return &ValidationError{Message: fmt.Sprintf("%d validation error%s detected: %s",
		len(violations), plural, strings.Join(violations, "; "))}
}

// AccessDeniedError is returned for an ARN naming a function of another
// account: Kindling has no resource policies, so the caller is not
// authorised. Lambda answers AccessDeniedException (403).
type AccessDeniedError struct {
	Message string
}

func (e *AccessDeniedError) Error() string { return e.Message }

// isPlainName reports whether s is a bare name (the common case), which is
// checked without the regular expression.
func isPlainName(s string, dots bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.' && dots:
		default:
			return false
		}
	}
	return true
}

// ParseFunctionName parses a FunctionName parameter under rule. Violations
// of the pattern or the lengths give a *ValidationError with Lambda's
// message.
func ParseFunctionName(s string, rule NameRule) (FunctionRef, error) {
	var ref FunctionRef
	ok := false
	if isPlainName(s, rule.Dots) {
		ref.Name, ok = s, true
	} else if len(s) <= 4*rule.MaxLen+64 {
		re := nameRE
		if rule.Dots {
			re = nameDotsRE
		}
		if m := re.FindStringSubmatch(s); m != nil {
			ok = true
			ref.Region = m[re.SubexpIndex("region")]
			ref.Account = m[re.SubexpIndex("account")]
			ref.Name = m[re.SubexpIndex("name")]
			ref.Qualifier = m[re.SubexpIndex("qualifier")]
		}
	}
	var violations []string
	max := rule.MaxLen
	if ok && rule.NameOnlyMax > 0 && ref.Name == s {
		max = rule.NameOnlyMax
	}
	if len(s) > max {
		violations = append(violations, Violation(s, "functionName",
			fmt.Sprintf("Member must have length less than or equal to %d", max)))
	}
	if len(s) == 0 {
		violations = append(violations, Violation(s, "functionName",
			"Member must have length greater than or equal to 1"))
	}
	if !ok {
		pattern := namePatternText
		if rule.Dots {
			pattern = namePatternTextDots
		}
		violations = append(violations, Violation(s, "functionName",
			"Member must satisfy regular expression pattern: "+pattern))
	}
	if err := NewValidationError(violations...); err != nil {
		return FunctionRef{}, err
	}
	return ref, nil
}

// ValidName reports whether name is a function name that can exist.
func ValidName(name string) bool {
	return len(name) <= MaxNameLen && isPlainName(name, false)
}

// WithQualifier merges the Qualifier parameter q (may be "") into r. A q
// that fails the model's constraint is a *ValidationError; a q that
// differs from a qualifier already in the ARN is errdefs.ErrInvalid.
func (r FunctionRef) WithQualifier(q string) (FunctionRef, error) {
	if q == "" {
		return r, nil
	}
	var violations []string
	if len(q) > 128 {
		violations = append(violations, Violation(q, "qualifier", "Member must have length less than or equal to 128"))
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '$' || c == '_' || c == '-') {
			violations = append(violations, Violation(q, "qualifier",
				"Member must satisfy regular expression pattern: "+qualifierPatternText))
			break
		}
	}
	if err := NewValidationError(violations...); err != nil {
		return r, err
	}
	if r.Qualifier != "" && r.Qualifier != q {
		return r, fmt.Errorf("%w: The derived qualifier from the function name does not match the specified qualifier.", errdefs.ErrInvalid)
	}
	r.Qualifier = q
	return r, nil
}

// Resolve checks r against the caller's account and the server's region,
// for the API action named (e.g. "GetFunction", for messages), for an
// operation on $LATEST only: it is ResolveQualified, and a qualifier other
// than $LATEST is errdefs.ErrNotFound with Lambda's message. Operations
// that take versions and aliases use ResolveQualified and look the
// qualifier up (Store.GetQualified, Store.LookupQualified).
func (r FunctionRef) Resolve(account, region, action string) error {
	if err := r.ResolveQualified(account, region, action); err != nil {
		return err
	}
	if r.Qualifier != "" && r.Qualifier != LatestVersion {
		return fmt.Errorf("%w: Function not found: arn:aws:lambda:%s:%s:function:%s:%s",
			errdefs.ErrNotFound, region, account, r.Name, r.Qualifier)
	}
	return nil
}

// ResolveQualified checks r against the caller's account and the
// server's region, for the API action named. A function of another
// account is an *AccessDeniedError; another region is errdefs.ErrNotFound
// with Lambda's message. The qualifier, if any, is left to the caller.
func (r FunctionRef) ResolveQualified(account, region, action string) error {
	if r.Account != "" && r.Account != account {
		arn := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", orDefault(r.Region, region), r.Account, r.Name)
		return &AccessDeniedError{Message: fmt.Sprintf(
			"User: arn:aws:iam::%s:root is not authorized to perform: lambda:%s on resource: %s because no resource-based policy allows the lambda:%s action",
			account, action, arn, action)}
	}
	if r.Region != "" && r.Region != region {
		return fmt.Errorf("%w: Functions from '%s' are not reachable in this region ('%s')", errdefs.ErrNotFound, r.Region, region)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
