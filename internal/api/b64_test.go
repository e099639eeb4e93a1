package api_test

import "encoding/base64"

var (
	b64URL    = base64.URLEncoding
	b64RawURL = base64.RawURLEncoding
	b64Std    = base64.StdEncoding
)
