package awsprov

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ohfp/ohfp/internal/provider"
)

// ssmEntry is a cached SSM parameter value.
type ssmEntry struct {
	value   string
	expires time.Time
}

// resolveImage turns a template's imageId into an AMI id: an "ami-" id is
// used as is; an SSM parameter path ("/aws/service/...", optionally
// prefixed "resolve:ssm:") is read through SSM GetParameter and cached for
// the SSM cache TTL. Anything else is passed to EC2 as is, for EC2 to judge.
func (p *Provider) resolveImage(ctx context.Context, imageID string) (string, error) {
	path, ok := strings.CutPrefix(imageID, "resolve:ssm:")
	if !ok && !strings.HasPrefix(imageID, "/") {
		return imageID, nil
	}
	now := p.clock.Now()
	p.mu.Lock()
	e, hit := p.ssmCache[path]
	p.mu.Unlock()
	if hit && now.Before(e.expires) {
		return e.value, nil
	}
	out, err := p.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(path)})
	if err != nil {
		return "", classify("GetParameter", err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", &provider.Error{Op: "GetParameter", Kind: provider.Fatal,
			Message: fmt.Sprintf("SSM parameter %s has no value", path)}
	}
	v := aws.ToString(out.Parameter.Value)
	p.mu.Lock()
	p.ssmCache[path] = ssmEntry{value: v, expires: now.Add(p.ssmTTL)}
	p.mu.Unlock()
	p.log.Debug("resolved AMI from SSM", "parameter", path, "image_id", v)
	return v, nil
}

// rootDeviceName returns the root device name of an AMI (e.g. /dev/xvda),
// cached for the life of the provider: an AMI never changes.
func (p *Provider) rootDeviceName(ctx context.Context, imageID string) (string, error) {
	p.mu.Lock()
	dev, ok := p.rootDev[imageID]
	p.mu.Unlock()
	if ok {
		return dev, nil
	}
	out, err := p.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{imageID}})
	if err != nil {
		return "", classify("DescribeImages", err)
	}
	for _, img := range out.Images {
		if aws.ToString(img.ImageId) == imageID && aws.ToString(img.RootDeviceName) != "" {
			dev = aws.ToString(img.RootDeviceName)
		}
	}
	if dev == "" {
		return "", &provider.Error{Op: "DescribeImages", Code: "InvalidAMIID.NotFound", Kind: provider.Fatal,
			Message: fmt.Sprintf("The image id '[%s]' does not exist or has no root device name", imageID)}
	}
	p.mu.Lock()
	p.rootDev[imageID] = dev
	p.mu.Unlock()
	return dev, nil
}
