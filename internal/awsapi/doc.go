// Package awsapi is the edge where Kindling speaks AWS: the wire shapes of
// the Lambda API (REST-JSON, version 2015-03-31) and the one place errors
// become AWS errors.
//
// Components return errdefs classes wrapped with %w (or a few typed
// errors); WriteError turns them into Lambda's error responses: the HTTP
// status, the X-Amzn-ErrorType header the SDKs read the type from, and a
// JSON body {"Type":"User","message":"..."} (the message key's case is the
// one Lambda's model gives the type; SDKs accept either). Errors that are
// not the client's fault never show their text: the client gets a generic
// ServiceException and the real error is logged with the request id.
//
// Message convention for class errors: the text after "<class>: " of the
// error made with fmt.Errorf("%w: <message>", errdefs.ErrX), or the whole
// Error() of a typed error that unwraps to the class directly (codestore's
// *Error). Wrapping either further with context is fine: the message is
// taken from the error that wraps the class, not from the outermost one.
package awsapi
