package ups

import (
	"errors"
	"fmt"
)

// ErrorCode is the word after ERR in a upsd reply.
type ErrorCode string

// Error codes of the NUT network protocol (docs/net-protocol.txt in NUT).
const (
	CodeAccessDenied         ErrorCode = "ACCESS-DENIED"
	CodeUnknownUPS           ErrorCode = "UNKNOWN-UPS"
	CodeVarNotSupported      ErrorCode = "VAR-NOT-SUPPORTED"
	CodeCmdNotSupported      ErrorCode = "CMD-NOT-SUPPORTED"
	CodeInvalidArgument      ErrorCode = "INVALID-ARGUMENT"
	CodeInstCmdFailed        ErrorCode = "INSTCMD-FAILED"
	CodeSetFailed            ErrorCode = "SET-FAILED"
	CodeReadOnly             ErrorCode = "READONLY"
	CodeTooLong              ErrorCode = "TOO-LONG"
	CodeFeatureNotSupported  ErrorCode = "FEATURE-NOT-SUPPORTED"
	CodeFeatureNotConfigured ErrorCode = "FEATURE-NOT-CONFIGURED"
	CodeAlreadySSLMode       ErrorCode = "ALREADY-SSL-MODE"
	CodeDriverNotConnected   ErrorCode = "DRIVER-NOT-CONNECTED"
	CodeDataStale            ErrorCode = "DATA-STALE"
	CodeAlreadyLoggedIn      ErrorCode = "ALREADY-LOGGED-IN"
	CodeInvalidPassword      ErrorCode = "INVALID-PASSWORD"
	CodeAlreadySetPassword   ErrorCode = "ALREADY-SET-PASSWORD"
	CodeInvalidUsername      ErrorCode = "INVALID-USERNAME"
	CodeAlreadySetUsername   ErrorCode = "ALREADY-SET-USERNAME"
	CodeUsernameRequired     ErrorCode = "USERNAME-REQUIRED"
	CodePasswordRequired     ErrorCode = "PASSWORD-REQUIRED"
	CodeUnknownCommand       ErrorCode = "UNKNOWN-COMMAND"
	CodeInvalidValue         ErrorCode = "INVALID-VALUE"
)

// ServerError is an ERR reply from upsd. The connection stays usable.
// Compare with errors.Is against the Err* values below.
type ServerError struct {
	Code ErrorCode
	// Detail is any text after the code (upsd rarely sends any).
	Detail string
}

func (e *ServerError) Error() string {
	s := "upsd replied ERR " + string(e.Code)
	if e.Code == "" {
		s = "upsd replied ERR without a code"
	}
	if e.Detail != "" {
		s += " " + clip(e.Detail)
	}
	if m, ok := errorMeaning[e.Code]; ok {
		s += " (" + m + ")"
	}
	return s
}

// Is matches any *ServerError with the same code, so that
// errors.Is(err, ups.ErrDataStale) works whatever the detail.
func (e *ServerError) Is(target error) bool {
	var t *ServerError
	return errors.As(target, &t) && t.Code == e.Code
}

// Typed errors for the codes a monitoring client meets. Each makes the UPS
// unknown, with the reason.
var (
	ErrAccessDenied         = &ServerError{Code: CodeAccessDenied}
	ErrUnknownUPS           = &ServerError{Code: CodeUnknownUPS}
	ErrVarNotSupported      = &ServerError{Code: CodeVarNotSupported}
	ErrDriverNotConnected   = &ServerError{Code: CodeDriverNotConnected}
	ErrDataStale            = &ServerError{Code: CodeDataStale}
	ErrFeatureNotConfigured = &ServerError{Code: CodeFeatureNotConfigured}
	ErrFeatureNotSupported  = &ServerError{Code: CodeFeatureNotSupported}
	ErrInvalidUsername      = &ServerError{Code: CodeInvalidUsername}
	ErrInvalidPassword      = &ServerError{Code: CodeInvalidPassword}
	ErrUnknownCommand       = &ServerError{Code: CodeUnknownCommand}
	ErrCmdNotSupported      = &ServerError{Code: CodeCmdNotSupported}
	ErrInstCmdFailed        = &ServerError{Code: CodeInstCmdFailed}
)

// errorMeaning says in the operator's words what a code means for us.
var errorMeaning = map[ErrorCode]string{
	CodeAccessDenied:         "upsd refused the username/password, or the user may not do this (upsd.users)",
	CodeUnknownUPS:           "upsd serves no UPS of that name",
	CodeVarNotSupported:      "the UPS does not report that variable",
	CodeDriverNotConnected:   "upsd has no connection to the UPS driver: the driver is not running",
	CodeDataStale:            "the UPS driver stopped sending fresh data",
	CodeFeatureNotConfigured: "upsd has no TLS certificate configured",
	CodeFeatureNotSupported:  "upsd was built without TLS support",
	CodeUnknownCommand:       "upsd does not know the command",
	CodeCmdNotSupported:      "the UPS's driver does not offer that command",
	CodeInstCmdFailed:        "upsd could not pass the command to the driver",
}

// IsServerError reports whether err is an ERR reply (as opposed to a
// network or protocol failure), and returns it.
func IsServerError(err error) (*ServerError, bool) {
	var se *ServerError
	ok := errors.As(err, &se)
	return se, ok
}

// opError names the peer and the request an error happened on.
func opError(addr, request string, err error) error {
	return fmt.Errorf("nut %s: %s: %w", addr, request, err)
}
