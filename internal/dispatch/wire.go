package dispatch

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/nanofaas/control-plane/internal/execution"
)

// encodeRequest builds {"input":<raw>,"metadata":<obj|null>} directly into one exactly-sized
// slice: the raw input is copied as is, never decoded and re-encoded.
func encodeRequest(req *execution.Request) []byte {
	var input []byte
	var meta map[string]string
	if req != nil {
		input, meta = req.Input, req.Metadata
	}
	size := len(`{"input":,"metadata":}`) + max(len(input), len("null")) + len("null")
	for k, v := range meta {
		size += len(k) + len(v) + 6 // quotes, colon, comma
	}
	b := make([]byte, 0, size)
	b = append(b, `{"input":`...)
	if len(input) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, input...)
	}
	b = append(b, `,"metadata":`...)
	if meta == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		first := true
		for k, v := range meta {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = execution.AppendJSONString(b, k)
			b = append(b, ':')
			b = execution.AppendJSONString(b, v)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// mediaKind is how a response Content-Type is decoded.
type mediaKind int

const (
	mediaMissing mediaKind = iota // no Content-Type: JSON if it parses, else text (D3)
	mediaText                     // compatible with text/plain: body is a string
	mediaJSON                     // application/json or application/*+json
	mediaOther                    // anything else: not supported
	mediaInvalid                  // not a parseable media type
)

// classifyMediaType follows Spring's MediaType.isCompatibleWith(TEXT_PLAIN) and the JSON
// decoder's supported types (application/json, application/*+json), case-insensitively.
func classifyMediaType(contentType string) mediaKind {
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.TrimSpace(mt)
	if mt == "" {
		if strings.TrimSpace(contentType) == "" {
			return mediaMissing
		}
		return mediaInvalid
	}
	slash := strings.IndexByte(mt, '/')
	if slash <= 0 || slash == len(mt)-1 {
		return mediaInvalid
	}
	typ, sub := mt[:slash], mt[slash+1:]
	switch {
	case typ == "*":
		if sub != "*" {
			return mediaInvalid // Spring: wildcard type is legal only in '*/*'
		}
		return mediaText
	case strings.EqualFold(typ, "text"):
		if sub == "*" || strings.EqualFold(sub, "plain") {
			return mediaText
		}
	case strings.EqualFold(typ, "application"):
		if strings.EqualFold(sub, "json") || (len(sub) > 5 && strings.EqualFold(sub[len(sub)-5:], "+json")) {
			return mediaJSON
		}
	}
	return mediaOther
}

// normalizeMediaType renders a Content-Type the way Spring's MediaType.toString does
// ("text/html;charset=utf-8"), for error messages only.
func normalizeMediaType(contentType string) string {
	parts := strings.Split(contentType, ";")
	var sb strings.Builder
	sb.WriteString(strings.ToLower(strings.TrimSpace(parts[0])))
	for _, p := range parts[1:] {
		key, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		sb.WriteByte(';')
		sb.WriteString(strings.TrimSpace(key))
		sb.WriteByte('=')
		sb.WriteString(strings.TrimSpace(val))
	}
	return sb.String()
}

// decodeSuccess turns a 2xx body into a Result per DECISIONS.md D3. ok=false means a decoding
// failure (POOL_ERROR), which the caller reports without cold-start facts, like the reference.
// The returned output never aliases body (body is a reused buffer).
func decodeSuccess(contentType string, body []byte) (execution.Result, bool) {
	kind := classifyMediaType(contentType)
	if len(body) == 0 {
		return execution.SuccessResult(nil), true
	}
	switch kind {
	case mediaText:
		return execution.SuccessResult(execution.AppendJSONString(make([]byte, 0, len(body)+2), body)), true
	case mediaJSON:
		raw := bytes.TrimSpace(body)
		if len(raw) == 0 { // whitespace only: no JSON value at all, same as an empty body
			return execution.SuccessResult(nil), true
		}
		if !json.Valid(raw) {
			var probe json.RawMessage
			err := json.Unmarshal(raw, &probe)
			msg := "JSON decoding error: invalid JSON in function response"
			if err != nil {
				msg = "JSON decoding error: " + err.Error()
			}
			return execution.ErrorResult(CodePoolError, msg), false
		}
		return execution.SuccessResult(bytes.Clone(raw)), true
	case mediaMissing:
		if raw := bytes.TrimSpace(body); json.Valid(raw) {
			return execution.SuccessResult(bytes.Clone(raw)), true
		}
		return execution.SuccessResult(execution.AppendJSONString(make([]byte, 0, len(body)+2), body)), true
	case mediaInvalid:
		return execution.ErrorResult(CodePoolError, "Invalid mime type \""+contentType+"\""), false
	default:
		return execution.ErrorResult(CodePoolError, "Content type '"+normalizeMediaType(contentType)+"' not supported"), false
	}
}

// statusMessage is the POOL_ERROR message of a non-2xx reply: the raw body, or when it is empty the
// status as Spring's HttpStatusCode.toString renders it ("500 INTERNAL_SERVER_ERROR", or just the
// number for codes Spring has no constant for).
func statusMessage(code int, body []byte) string {
	if len(body) > 0 {
		return string(body)
	}
	if name := springStatusName(code); name != "" {
		return strconv.Itoa(code) + " " + name
	}
	return strconv.Itoa(code)
}

// springStatusName returns the name of the HttpStatus constant that Spring's HttpStatus.resolve
// returns for code (deprecated duplicates excluded, as Spring does), or "" if there is none.
func springStatusName(code int) string {
	switch code {
	case 100:
		return "CONTINUE"
	case 101:
		return "SWITCHING_PROTOCOLS"
	case 102:
		return "PROCESSING"
	case 103:
		return "EARLY_HINTS"
	case 200:
		return "OK"
	case 201:
		return "CREATED"
	case 202:
		return "ACCEPTED"
	case 203:
		return "NON_AUTHORITATIVE_INFORMATION"
	case 204:
		return "NO_CONTENT"
	case 205:
		return "RESET_CONTENT"
	case 206:
		return "PARTIAL_CONTENT"
	case 207:
		return "MULTI_STATUS"
	case 208:
		return "ALREADY_REPORTED"
	case 226:
		return "IM_USED"
	case 300:
		return "MULTIPLE_CHOICES"
	case 301:
		return "MOVED_PERMANENTLY"
	case 302:
		return "FOUND"
	case 303:
		return "SEE_OTHER"
	case 304:
		return "NOT_MODIFIED"
	case 305:
		return "USE_PROXY"
	case 307:
		return "TEMPORARY_REDIRECT"
	case 308:
		return "PERMANENT_REDIRECT"
	case 400:
		return "BAD_REQUEST"
	case 401:
		return "UNAUTHORIZED"
	case 402:
		return "PAYMENT_REQUIRED"
	case 403:
		return "FORBIDDEN"
	case 404:
		return "NOT_FOUND"
	case 405:
		return "METHOD_NOT_ALLOWED"
	case 406:
		return "NOT_ACCEPTABLE"
	case 407:
		return "PROXY_AUTHENTICATION_REQUIRED"
	case 408:
		return "REQUEST_TIMEOUT"
	case 409:
		return "CONFLICT"
	case 410:
		return "GONE"
	case 411:
		return "LENGTH_REQUIRED"
	case 412:
		return "PRECONDITION_FAILED"
	case 413:
		return "PAYLOAD_TOO_LARGE"
	case 414:
		return "URI_TOO_LONG"
	case 415:
		return "UNSUPPORTED_MEDIA_TYPE"
	case 416:
		return "REQUESTED_RANGE_NOT_SATISFIABLE"
	case 417:
		return "EXPECTATION_FAILED"
	case 418:
		return "I_AM_A_TEAPOT"
	case 419:
		return "INSUFFICIENT_SPACE_ON_RESOURCE"
	case 420:
		return "METHOD_FAILURE"
	case 421:
		return "DESTINATION_LOCKED"
	case 422:
		return "UNPROCESSABLE_ENTITY"
	case 423:
		return "LOCKED"
	case 424:
		return "FAILED_DEPENDENCY"
	case 425:
		return "TOO_EARLY"
	case 426:
		return "UPGRADE_REQUIRED"
	case 428:
		return "PRECONDITION_REQUIRED"
	case 429:
		return "TOO_MANY_REQUESTS"
	case 431:
		return "REQUEST_HEADER_FIELDS_TOO_LARGE"
	case 451:
		return "UNAVAILABLE_FOR_LEGAL_REASONS"
	case 500:
		return "INTERNAL_SERVER_ERROR"
	case 501:
		return "NOT_IMPLEMENTED"
	case 502:
		return "BAD_GATEWAY"
	case 503:
		return "SERVICE_UNAVAILABLE"
	case 504:
		return "GATEWAY_TIMEOUT"
	case 505:
		return "HTTP_VERSION_NOT_SUPPORTED"
	case 506:
		return "VARIANT_ALSO_NEGOTIATES"
	case 507:
		return "INSUFFICIENT_STORAGE"
	case 508:
		return "LOOP_DETECTED"
	case 509:
		return "BANDWIDTH_LIMIT_EXCEEDED"
	case 510:
		return "NOT_EXTENDED"
	case 511:
		return "NETWORK_AUTHENTICATION_REQUIRED"
	}
	return ""
}
