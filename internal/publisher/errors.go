package publisher

import (
	"errors"
	"slices"

	"github.com/aws/smithy-go"

	"github.com/autoami/terraform-provider-autoami/internal/unpacker/wire"
)

// isCode reports whether err is an AWS API error with one of codes.
func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && slices.Contains(codes, ae.ErrorCode())
}

// isWireCode reports whether err is an unpacker API error with code.
func isWireCode(err error, code wire.ErrorCode) bool {
	var we *wire.Error
	return errors.As(err, &we) && we.Code == code
}
