package awssim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Service names used in call.service and in accounting keys.
const (
	svcEC2         = "ec2"
	svcAutoScaling = "autoscaling"
	svcSSM         = "ssm"
)

const (
	ec2Version         = "2016-11-15"
	autoScalingVersion = "2011-01-01"
	ec2Namespace       = "http://ec2.amazonaws.com/doc/2016-11-15/"
	autoScalingNS      = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
	maxBody            = 16 << 20
)

// APIError is an AWS API error: its Code and Message reach the SDK as a
// typed smithy.APIError; Status is the HTTP status (400 when 0).
type APIError struct {
	Code    string
	Message string
	Status  int
	// queryCode is SQS's older code, sent in x-amzn-query-error.
	queryCode string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func (e *APIError) status() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

func errMissingParameter(name string) *APIError {
	return &APIError{Code: "MissingParameter", Message: fmt.Sprintf("The request must contain the parameter %s", name), Status: 400}
}

// errDryRun is EC2's answer to a dry run that would have succeeded.
func errDryRun() *APIError {
	return &APIError{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", Status: 412}
}

// errUnauthorized is EC2's answer to a call the credentials may not make.
func errUnauthorized() *APIError {
	return &APIError{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation.", Status: 403}
}

func errInvalidParameterValue(msg string) *APIError {
	return &APIError{Code: "InvalidParameterValue", Message: msg, Status: 400}
}

func errInvalidParameterCombination(msg string) *APIError {
	return &APIError{Code: "InvalidParameterCombination", Message: msg, Status: 400}
}

// errValidation is Auto Scaling's and SSM's spelling of a bad parameter.
func errValidation(msg string) *APIError {
	return &APIError{Code: "ValidationError", Message: msg, Status: 400}
}

// call is one API request being served. Handlers read parameters from p
// (query protocols) or decode body (SSM, JSON) with decodeJSON.
type call struct {
	r         *Region
	service   string
	action    string
	p         params
	body      []byte
	now       time.Time
	requestID string
}

// err returns the first parameter-decoding error of the call.
func (c *call) err() error { return c.p.Err() }

// decodeJSON decodes an SSM JSON body into v.
func (c *call) decodeJSON(v any) error {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(c.body))
	if err := dec.Decode(v); err != nil {
		return &APIError{Code: "SerializationException", Message: "Start of structure or map found where not expected: " + err.Error(), Status: 400}
	}
	return nil
}

// Handler returns the HTTP handler serving EC2, Auto Scaling and SSM in
// their wire protocols, and the control endpoint under /_sim/.
func (r *Region) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/_sim/", r.controlHandler())
	mux.HandleFunc("/", r.serveAPI)
	return mux
}

func (r *Region) serveAPI(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	c := &call{r: r}
	if target := req.Header.Get("X-Amz-Target"); target != "" {
		c.service = svcSSM
		c.action = target
		if a, ok := strings.CutPrefix(target, "AmazonSQS."); ok {
			c.service, c.action = svcSQS, a
		} else if a, ok := strings.CutPrefix(target, pricingTargetPrefix); ok {
			c.service, c.action = svcPricing, a
		} else if a, ok := strings.CutPrefix(target, quotasTargetPrefix); ok {
			c.service, c.action = svcQuotas, a
		} else if i := strings.LastIndexByte(target, '.'); i >= 0 {
			c.action = target[i+1:]
			if !strings.HasPrefix(target, "AmazonSSM.") {
				c.action = target
			}
		}
		c.body = body
		var e error
		c.p = params{m: map[string]string{}, err: &e}
	} else {
		form, perr := url.ParseQuery(string(body))
		if perr != nil {
			form = url.Values{}
		}
		for k, v := range req.URL.Query() {
			if _, ok := form[k]; !ok {
				form[k] = v
			}
		}
		c.p = newParams(form)
		c.action = form.Get("Action")
		switch v := form.Get("Version"); v {
		case ec2Version:
			c.service = svcEC2
		case autoScalingVersion:
			c.service = svcAutoScaling
		default:
			c.service = serviceFromAuth(req.Header.Get("Authorization"))
			if c.action == "" {
				r.writeError(w, c, &APIError{Code: "MissingAction", Message: "The request must contain the parameter Action", Status: 400})
				return
			}
			if v == "" {
				r.writeError(w, c, errMissingParameter("Version"))
				return
			}
			svc := "AmazonEC2"
			if c.service == svcAutoScaling {
				svc = "AutoScaling"
			}
			r.writeError(w, c, &APIError{Code: "NoSuchVersion", Message: fmt.Sprintf("The requested version (%s) of service %s does not exist", v, svc), Status: 400})
			return
		}
		if c.action == "" {
			r.writeError(w, c, &APIError{Code: "MissingAction", Message: "The request must contain the parameter Action", Status: 400})
			return
		}
	}

	r.mu.Lock()
	c.requestID = r.requestID()
	r.calls[c.action]++
	r.noteAction(c.action, req.Header.Get("Authorization"))
	fault := r.pickFault(c)
	r.mu.Unlock()

	if fault.latency > 0 {
		t := time.NewTimer(fault.latency)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return
		}
	}
	if fault.drop {
		r.countError(c.action, CodeConnectionDropped)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if fault.err != nil {
		r.writeError(w, c, fault.err)
		return
	}

	if c.service == svcSQS {
		r.serveSQS(w, req, c)
		return
	}
	h := r.handlerFor(c)
	var out any
	if h == nil {
		err = unknownAction(c)
	} else if err = filterLimit(c); err != nil {
		// rejected before the handler looks at anything
	} else {
		r.mu.Lock()
		r.advance(r.clk.Now())
		c.now = r.now
		out, err = h(c)
		r.mu.Unlock()
	}
	if err != nil {
		r.writeError(w, c, err)
		return
	}
	if fault.dropAnswer {
		// The call ran; its answer never reaches the client.
		r.countError(c.action, CodeAnswerDropped)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	r.writeResult(w, c, out)
}

func (r *Region) handlerFor(c *call) handler {
	switch c.service {
	case svcEC2:
		return r.ec2[c.action]
	case svcAutoScaling:
		return r.autoscaling[c.action]
	case svcSSM:
		return r.ssm[c.action]
	case svcPricing:
		return r.pricing[c.action]
	case svcQuotas:
		return r.servicequotas[c.action]
	}
	return nil
}

func unknownAction(c *call) *APIError {
	switch c.service {
	case svcAutoScaling:
		return &APIError{Code: "InvalidAction", Message: fmt.Sprintf("Could not find operation %s for version %s", c.action, autoScalingVersion), Status: 400}
	case svcSSM, svcPricing, svcQuotas:
		return &APIError{Code: "UnknownOperationException", Message: fmt.Sprintf("Unknown operation %s", c.action), Status: 400}
	}
	return &APIError{Code: "InvalidAction", Message: fmt.Sprintf("The action %s is not valid for this web service.", c.action), Status: 400}
}

// accessKey reads the access key id from a SigV4 Authorization header.
func accessKey(auth string) string {
	i := strings.Index(auth, "Credential=")
	if i < 0 {
		return ""
	}
	return strings.SplitN(auth[i+len("Credential="):], "/", 2)[0]
}

// Action is a call that changes the cloud, as it arrived: when, which, and
// whose access key signed it (GET /_sim/actions).
type Action struct {
	At        time.Time `json:"at"`
	Action    string    `json:"action"`
	AccessKey string    `json:"accessKey"`
}

// maxActions bounds the action log (the oldest are dropped).
const maxActions = 200000

// noteAction logs a call that changes the cloud (every action but
// Describe*, Get* and List*). Call with the lock held.
func (r *Region) noteAction(action, auth string) {
	for _, p := range []string{"Describe", "Get", "List"} {
		if strings.HasPrefix(action, p) {
			return
		}
	}
	if len(r.actions) >= maxActions {
		r.actions = append(r.actions[:0], r.actions[len(r.actions)/2:]...)
	}
	r.actions = append(r.actions, Action{At: time.Now(), Action: action, AccessKey: accessKey(auth)})
}

// Actions returns the calls that changed the cloud, oldest first.
func (r *Region) Actions() []Action {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.actions)
}

// serviceFromAuth reads the service from a SigV4 credential scope
// (Credential=AKID/20250101/us-east-1/ec2/aws4_request).
func serviceFromAuth(auth string) string {
	i := strings.Index(auth, "Credential=")
	if i < 0 {
		return svcEC2
	}
	parts := strings.Split(strings.SplitN(auth[i+len("Credential="):], ",", 2)[0], "/")
	if len(parts) >= 4 {
		switch parts[3] {
		case "autoscaling":
			return svcAutoScaling
		case "ssm":
			return svcSSM
		}
	}
	return svcEC2
}

func (r *Region) countError(action, code string) {
	r.mu.Lock()
	r.errs[action]++
	r.errCodes[action+" "+code]++
	r.mu.Unlock()
}

func (r *Region) writeError(w http.ResponseWriter, c *call, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		r.log.Error("internal error", "action", c.action, "err", err)
		ae = &APIError{Code: "InternalError", Message: "An internal error has occurred", Status: 500}
		if c.service == svcSSM {
			ae.Code = "InternalServerError"
		}
		if c.service == svcPricing {
			ae.Code = "InternalErrorException"
		}
		if c.service == svcQuotas {
			ae.Code = "ServiceException"
		}
	}
	if c.action != "" {
		r.countError(c.action, ae.Code)
	}
	if c.requestID == "" {
		r.mu.Lock()
		c.requestID = r.requestID()
		r.mu.Unlock()
	}
	w.Header().Set("x-amzn-RequestId", c.requestID)
	switch c.service {
	case svcSQS:
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		if ae.queryCode != "" {
			typ := "Sender"
			if ae.status() >= 500 {
				typ = "Receiver"
			}
			w.Header().Set("x-amzn-query-error", ae.queryCode+";"+typ)
		}
		w.WriteHeader(ae.status())
		json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + ae.Code, "message": ae.Message})
	case svcSSM, svcPricing, svcQuotas:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", ae.Code)
		w.WriteHeader(ae.status())
		json.NewEncoder(w).Encode(map[string]string{"__type": ae.Code, "message": ae.Message})
	case svcAutoScaling:
		typ := "Sender"
		if ae.status() >= 500 {
			typ = "Receiver"
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(ae.status())
		fmt.Fprintf(w, "<ErrorResponse xmlns=%q><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>",
			autoScalingNS, typ, xmlEscape(ae.Code), xmlEscape(ae.Message), c.requestID)
	default:
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(ae.status())
		fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>",
			xmlEscape(ae.Code), xmlEscape(ae.Message), c.requestID)
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// innerXML encodes v's fields without an enclosing element. v is a struct
// (or pointer to one) whose fields carry xml tags; it must not have an
// XMLName field.
func innerXML(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := xml.NewEncoder(&buf).EncodeElement(v, xml.StartElement{Name: xml.Name{Local: "x"}}); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if bytes.HasSuffix(b, []byte("/>")) { // never produced by encoding/xml, but be safe
		return nil, nil
	}
	b = bytes.TrimPrefix(b, []byte("<x>"))
	b = bytes.TrimSuffix(b, []byte("</x>"))
	return b, nil
}

func (r *Region) writeResult(w http.ResponseWriter, c *call, out any) {
	w.Header().Set("x-amzn-RequestId", c.requestID)
	if c.service == svcSSM || c.service == svcSQS || c.service == svcPricing || c.service == svcQuotas {
		b, err := json.Marshal(out)
		if err != nil {
			r.writeError(w, c, err)
			return
		}
		ct := "application/x-amz-json-1.1"
		if c.service == svcSQS {
			ct = "application/x-amz-json-1.0"
		}
		w.Header().Set("Content-Type", ct)
		w.Write(b)
		return
	}
	inner, err := innerXML(out)
	if err != nil {
		r.writeError(w, c, err)
		return
	}
	var buf bytes.Buffer
	buf.Grow(len(inner) + 256)
	buf.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	if c.service == svcAutoScaling {
		fmt.Fprintf(&buf, "<%sResponse xmlns=%q>", c.action, autoScalingNS)
		if out != nil {
			fmt.Fprintf(&buf, "<%sResult>", c.action)
			buf.Write(inner)
			fmt.Fprintf(&buf, "</%sResult>", c.action)
		}
		fmt.Fprintf(&buf, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>", c.requestID, c.action)
		w.Header().Set("Content-Type", "text/xml")
	} else {
		fmt.Fprintf(&buf, "<%sResponse xmlns=%q><requestId>%s</requestId>", c.action, ec2Namespace, c.requestID)
		buf.Write(inner)
		fmt.Fprintf(&buf, "</%sResponse>", c.action)
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	}
	w.Write(buf.Bytes())
}

// ts formats a time as AWS does in XML (ISO 8601, UTC, milliseconds).
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
