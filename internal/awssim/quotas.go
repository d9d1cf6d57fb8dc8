package awssim

import (
	"fmt"
	"maps"
	"regexp"
)

// Service Quotas (doc.go, "Service Quotas"): GetServiceQuota in the AWS
// JSON 1.1 protocol, X-Amz-Target ServiceQuotasV20190624.GetServiceQuota,
// for the quota values the /_sim/quotas lever (SetQuotas) applied.

const (
	svcQuotas          = "servicequotas"
	quotasTargetPrefix = "ServiceQuotasV20190624."
)

// ec2QuotaNames names the EC2 vCPU quotas (EC2 User Guide, "On-Demand
// Instance quotas" and "Spot Instance quotas"); a code set through the
// lever that is not listed here is answered with its code as its name.
var ec2QuotaNames = map[string]string{
	"L-1216C47A": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
	"L-DB2E81BA": "Running On-Demand G and VT instances",
	"L-417A185B": "Running On-Demand P instances",
	"L-74FC7D96": "Running On-Demand F instances",
	"L-7295265B": "Running On-Demand X instances",
	"L-1945791B": "Running On-Demand Inf instances",
	"L-6E869C2A": "Running On-Demand DL instances",
	"L-2C3B7624": "Running On-Demand Trn instances",
	"L-F7808C92": "Running On-Demand HPC instances",
	"L-43DA4232": "Running On-Demand High Memory instances",
	"L-34B43A08": "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
	"L-3819A6DF": "All G and VT Spot Instance Requests",
	"L-7212CCBC": "All P4, P3 and P2 Spot Instance Requests",
	"L-88CF9481": "All F Spot Instance Requests",
	"L-E3A00192": "All X Spot Instance Requests",
	"L-B5D1601B": "All Inf Spot Instance Requests",
	"L-85EED4F7": "All DL Spot Instance Requests",
}

var quotaCodePattern = regexp.MustCompile(`^L-[0-9A-F]{8}$`)

// SetQuotas applies EC2 quota values (quota code -> value, e.g.
// "L-1216C47A": 64); a negative value removes the code. Quotas never set
// are answered NoSuchResourceException.
func (r *Region) SetQuotas(q map[string]float64) error {
	for code := range q {
		if !quotaCodePattern.MatchString(code) {
			return fmt.Errorf("quota code %q: want L- and eight hex digits, e.g. L-1216C47A", code)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.quotas == nil {
		r.quotas = map[string]float64{}
	}
	for code, v := range q {
		if v < 0 {
			delete(r.quotas, code)
		} else {
			r.quotas[code] = v
		}
	}
	return nil
}

// Quotas returns the applied EC2 quota values.
func (r *Region) Quotas() map[string]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.quotas)
}

type getServiceQuotaInput struct {
	ServiceCode string
	QuotaCode   string
	ContextId   string
}

type serviceQuotaJSON struct {
	ServiceCode string
	ServiceName string
	QuotaArn    string
	QuotaCode   string
	QuotaName   string
	Value       float64
	Unit        string
	Adjustable  bool
	GlobalQuota bool
}

func quotasError(code, msg string) *APIError {
	return &APIError{Code: code, Message: msg, Status: 400}
}

// getServiceQuota answers GetServiceQuota (Service Quotas API Reference,
// "GetServiceQuota": ServiceCode and QuotaCode required; errors
// NoSuchResourceException, IllegalArgumentException,
// AccessDeniedException, TooManyRequestsException, ServiceException).
// Only ServiceCode ec2 has quotas here.
func (r *Region) getServiceQuota(c *call) (any, error) {
	var in getServiceQuotaInput
	if err := c.decodeJSON(&in); err != nil {
		return nil, err
	}
	if in.ServiceCode == "" || in.QuotaCode == "" {
		return nil, quotasError("IllegalArgumentException", "ServiceCode and QuotaCode are required")
	}
	v, ok := r.quotas[in.QuotaCode]
	if in.ServiceCode != "ec2" || !ok {
		return nil, quotasError("NoSuchResourceException", fmt.Sprintf("The request failed because the specified resource does not exist: %s/%s", in.ServiceCode, in.QuotaCode))
	}
	name := ec2QuotaNames[in.QuotaCode]
	if name == "" {
		name = in.QuotaCode
	}
	return map[string]any{"Quota": serviceQuotaJSON{
		ServiceCode: "ec2", ServiceName: "Amazon Elastic Compute Cloud (Amazon EC2)",
		QuotaArn:  fmt.Sprintf("arn:aws:servicequotas:%s:%s:ec2/%s", r.name, AccountID, in.QuotaCode),
		QuotaCode: in.QuotaCode, QuotaName: name, Value: v, Unit: "None", Adjustable: true,
	}}, nil
}

func (r *Region) registerQuotas() {
	r.servicequotas = map[string]handler{"GetServiceQuota": r.getServiceQuota}
}
