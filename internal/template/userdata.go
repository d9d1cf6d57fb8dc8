package template

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// User data, IBM's way. In IBM's AWS plugins a template's userData is not
// the user data itself: it is "k=v;k2=v2", variables the plugin exports to
// the host by replacing the marker %EXPORT_USER_DATA% of its user-data
// script (user_data.sh, which bootstraps the host and joins it to the
// cluster) with export commands, together with template_id and
// providerName (IBM's cloud-provider-plugins, hostProviders/aws
// AwsUtil.getEncodedUserData and hostProviders/awsv2 aws_client.py
// _build_user_data). ohfp does the same, one export per line.

// ExportMarker is the line of a user-data script that receives the
// template's variables.
const ExportMarker = "%EXPORT_USER_DATA%"

// MaxUserData is EC2's limit on user data, before base64.
const MaxUserData = 16 << 10

var userDataKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Var is one variable of userData.
type Var struct{ Name, Value string }

// UserDataVars parses userData, "k=v;k2=v2": items separated by ';' (empty
// ones skipped), each a shell variable name, '=' and a value without a
// line break. The value is written to the script as is, as IBM's plugin
// writes it (so $OTHER in it expands on the host).
func UserDataVars(s string) ([]Var, error) {
	var out []Var
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok:
			return nil, fmt.Errorf("%q has no '=': userData is variables, k=v;k2=v2, exported by the user-data script (put a script in userDataScript)", item)
		case !userDataKeyRe.MatchString(k):
			return nil, fmt.Errorf("%q is not a shell variable name (letters, digits, '_'; not starting with a digit)", k)
		case strings.ContainsAny(v, "\n\r"):
			return nil, fmt.Errorf("the value of %s has a line break", k)
		case seen[k]:
			return nil, fmt.Errorf("%s is given twice", k)
		}
		seen[k] = true
		out = append(out, Var{k, v})
	}
	return out, nil
}

// Call is what one request adds to the exports: LSF's rc_account and
// cluster name (empty: not given).
type Call struct{ RcAccount, ClusterName string }

// Exports returns the export lines the template's user-data script
// receives at ExportMarker, in IBM's order (hostProviders/aws
// AwsUtil.getEncodedUserData): userData's variables, rc_account,
// template_id, clustername, providerName. rc_account and clustername come
// from the caller (LSF), so they are single-quoted: the host's shell
// takes them as they are.
func (t *Template) Exports(c Call) ([]string, error) {
	vars, err := UserDataVars(t.UserData)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range vars {
		out = append(out, "export "+v.Name+"="+v.Value)
	}
	if c.RcAccount != "" {
		out = append(out, "export rc_account="+shellQuote(c.RcAccount))
	}
	out = append(out, "export template_id="+t.TemplateID)
	if c.ClusterName != "" {
		out = append(out, "export clustername="+shellQuote(c.ClusterName))
	}
	if t.ProviderName != "" {
		out = append(out, "export providerName="+t.ProviderName)
	}
	return out, nil
}

// shellQuote single-quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// RenderUserData replaces every ExportMarker of script with the
// template's export lines, without a request's own values.
func (t *Template) RenderUserData(script []byte) ([]byte, error) {
	return t.RenderUserDataFor(script, Call{})
}

// RenderUserDataFor replaces every ExportMarker of script with the export
// lines of the template and of the call c.
func (t *Template) RenderUserDataFor(script []byte, c Call) ([]byte, error) {
	if !bytes.Contains(script, []byte(ExportMarker)) {
		return script, nil
	}
	lines, err := t.Exports(c)
	if err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(script, []byte(ExportMarker), []byte(strings.Join(lines, "\n"))), nil
}
