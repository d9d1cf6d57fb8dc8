package awssim

import "fmt"

// DescribeInstanceAttribute (API Reference, DescribeInstanceAttribute,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceAttribute.html):
// one attribute of one instance at a time. awssim answers userData (the
// user data the instance was launched with, base64 as EC2 keeps it,
// whichever API launched it: RunInstances, a launch template's version
// under a fleet or group, a Spot Fleet launch specification), instanceType
// and instanceInitiatedShutdownBehavior; the other documented attributes
// are refused as not modelled (Unsupported), an undocumented one as
// InvalidParameterValue.

// instanceAttributes are the attribute names AWS documents (its
// InstanceAttributeName enumeration).
var instanceAttributes = map[string]bool{
	"instanceType": true, "kernel": true, "ramdisk": true, "userData": true, "disableApiTermination": true,
	"instanceInitiatedShutdownBehavior": true, "rootDeviceName": true, "blockDeviceMapping": true,
	"productCodes": true, "sourceDestCheck": true, "groupSet": true, "ebsOptimized": true,
	"sriovNetSupport": true, "enaSupport": true, "enclaveOptions": true, "disableApiStop": true,
}

type attributeValueXML struct {
	Value *string `xml:"value,omitempty"`
}

type describeInstanceAttributeXML struct {
	InstanceID       string             `xml:"instanceId"`
	UserData         *attributeValueXML `xml:"userData,omitempty"`
	InstanceType     *attributeValueXML `xml:"instanceType,omitempty"`
	ShutdownBehavior *attributeValueXML `xml:"instanceInitiatedShutdownBehavior,omitempty"`
}

func (r *Region) describeInstanceAttribute(c *call) (any, error) {
	id := c.p.reqStr("InstanceId")
	attr := c.p.reqStr("Attribute")
	if err := c.err(); err != nil {
		return nil, err
	}
	if !instanceAttributes[attr] {
		return nil, errInvalidParameterValue(fmt.Sprintf("Value (%s) for parameter attribute is invalid. Unknown attribute.", attr))
	}
	ins, err := r.instancesByID([]string{id})
	if err != nil {
		return nil, err
	}
	in := ins[0]
	out := &describeInstanceAttributeXML{InstanceID: in.id}
	switch attr {
	case "userData":
		// No user data: the element is there, without a value.
		out.UserData = &attributeValueXML{}
		if in.userData != "" {
			v := in.userData
			out.UserData.Value = &v
		}
	case "instanceType":
		v := in.typ.name
		out.InstanceType = &attributeValueXML{Value: &v}
	case "instanceInitiatedShutdownBehavior":
		v := in.shutdownBehavior
		if v == "" {
			v = "stop"
		}
		out.ShutdownBehavior = &attributeValueXML{Value: &v}
	default:
		return nil, &APIError{Code: "Unsupported", Message: fmt.Sprintf("awssim: DescribeInstanceAttribute does not model the %s attribute", attr), Status: 400}
	}
	return out, nil
}
