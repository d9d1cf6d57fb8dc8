package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// ImportHF reads IBM's awsprov_config.json and awsprov_templates.json from
// dir (an HF provider's configuration folder) and writes an equivalent,
// self-contained ohfpd YAML configuration: the settings under one provider
// named after the folder, the templates inline. notes lists every field it
// could not carry, and every choice it made. The YAML is validated as if
// saved in dir; err reports files it could not read or a result that does
// not validate (the YAML is still returned then, for the person to fix).
func ImportHF(dir string) (yamlText []byte, notes []string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	name := filepath.Base(abs)
	if !providerNameRe.MatchString(name) {
		name = "aws"
	}
	notes = append(notes, fmt.Sprintf("the provider is named %q after the folder; it must match the provider name in HF's hostProviders.json (HF_PROVIDER_NAME)", name))

	prov := yaml.MapSlice{{Key: "name", Value: name}}
	top := yaml.MapSlice{
		{Key: "socket", Value: DefaultSocket},
		{Key: "state_dir", Value: DefaultStateDir},
	}

	// awsprov_config.json: optional.
	cfgPath := filepath.Join(abs, "awsprov_config.json")
	if data, rerr := os.ReadFile(cfgPath); rerr == nil {
		var m yaml.MapSlice
		if err := yaml.UnmarshalWithOptions(data, &m, yaml.UseOrderedMap()); err != nil {
			return nil, notes, fmt.Errorf("%s: %s", cfgPath, yaml.FormatError(err, false, true))
		}
		var host, port string
		for _, kv := range m {
			k := fmt.Sprint(kv.Key)
			val := kv.Value
			sval := strings.TrimSpace(fmt.Sprint(val))
			switch k {
			case "AWS_REGION":
				prov = append(prov, yaml.MapItem{Key: "region", Value: sval})
			case "AWS_CREDENTIAL_FILE":
				prov = append(prov, yaml.MapItem{Key: "credentials_file", Value: absIn(abs, sval)})
			case "AWS_KEY_FILE":
				prov = append(prov, yaml.MapItem{Key: "key_file", Value: absIn(abs, sval)})
			case "AWS_ENDPOINT_URL":
				prov = append(prov, yaml.MapItem{Key: "endpoint_url", Value: sval})
			case "AWS_PROXY_HOST":
				host = sval
			case "AWS_PROXY_PORT":
				port = sval
			case "AWS_CONNECTION_TIMEOUT_MS":
				prov = appendDur(prov, "connection_timeout", k, sval, time.Millisecond, &notes)
			case "AWS_INSTANCE_PENDING_TIMEOUT_SEC":
				prov = appendDur(prov, "pending_timeout", k, sval, time.Second, &notes)
			case "AWS_DESCRIBE_REQUEST_INTERVAL":
				prov = appendDur(prov, "describe_interval", k, sval, time.Millisecond, &notes)
			case "AWS_REQUEST_RETRY_ATTEMPTS", "AWS_DESCRIBE_REQUEST_RETRY_ATTEMPTS":
				key := "retry_attempts"
				if k == "AWS_DESCRIBE_REQUEST_RETRY_ATTEMPTS" {
					key = "describe_retry_attempts"
				}
				if i, err := strconv.Atoi(sval); err == nil {
					prov = append(prov, yaml.MapItem{Key: key, Value: i})
				} else {
					notes = append(notes, fmt.Sprintf("%s: %q is not an integer; not carried", k, sval))
				}
			case "ACCEPT_PROPAGATED_LOG_SETTING":
				b, err := strconv.ParseBool(sval)
				if err != nil {
					notes = append(notes, fmt.Sprintf("%s: %q is not true or false; not carried", k, sval))
					continue
				}
				prov = append(prov, yaml.MapItem{Key: "accept_propagated_log_setting", Value: b})
			case "LogLevel", "LOG_LEVEL":
				lvl := map[string]string{"TRACE": "debug", "DEBUG": "debug", "INFO": "info", "WARN": "warn", "WARNING": "warn", "ERROR": "error", "FATAL": "error"}[strings.ToUpper(sval)]
				if lvl == "" {
					notes = append(notes, fmt.Sprintf("%s: %q is not a known level; not carried", k, sval))
					continue
				}
				top = append(top, yaml.MapItem{Key: "log_level", Value: lvl})
				notes = append(notes, fmt.Sprintf("%s %s became the daemon-wide log_level %s", k, sval, lvl))
			default:
				notes = append(notes, fmt.Sprintf("awsprov_config.json: %s (%s) is not supported by ohfp; not carried", k, sval))
			}
		}
		switch {
		case host != "" && port != "":
			prov = append(prov, yaml.MapItem{Key: "proxy", Value: strings.TrimPrefix(strings.TrimPrefix(host, "http://"), "https://") + ":" + port})
		case host != "" || port != "":
			notes = append(notes, "AWS_PROXY_HOST and AWS_PROXY_PORT must both be set; the proxy was not carried")
		}
	} else if errors.Is(rerr, os.ErrNotExist) {
		notes = append(notes, "no awsprov_config.json: the provider uses the AWS SDK's defaults (AWS_REGION, profile, instance role)")
	} else {
		return nil, notes, rerr
	}

	// awsprov_templates.json: required.
	tplPath := filepath.Join(abs, "awsprov_templates.json")
	data, err := os.ReadFile(tplPath)
	if err != nil {
		return nil, notes, err
	}
	var doc yaml.MapSlice
	if err := yaml.UnmarshalWithOptions(data, &doc, yaml.UseOrderedMap()); err != nil {
		return nil, notes, fmt.Errorf("%s: %s", tplPath, yaml.FormatError(err, false, true))
	}
	var templates []any
	for _, kv := range doc {
		if fmt.Sprint(kv.Key) != "templates" {
			notes = append(notes, fmt.Sprintf("awsprov_templates.json: top-level %s is not a template list; not carried", kv.Key))
			continue
		}
		list, ok := kv.Value.([]any)
		if !ok {
			return nil, notes, fmt.Errorf("%s: templates is not a list", tplPath)
		}
		for i, item := range list {
			tm, ok := item.(yaml.MapSlice)
			if !ok {
				notes = append(notes, fmt.Sprintf("awsprov_templates.json: templates[%d] is not an object; not carried", i))
				continue
			}
			id := fmt.Sprint(i)
			var out yaml.MapSlice
			for _, f := range tm {
				if fmt.Sprint(f.Key) == "templateId" {
					id = fmt.Sprint(f.Value)
				}
			}
			for _, f := range tm {
				k := fmt.Sprint(f.Key)
				known := false
				for _, n := range templateFieldNames {
					known = known || n == k
				}
				if !known {
					hint := templateHint(k)
					if hint == "" {
						hint = "not an ohfp template field"
					}
					notes = append(notes, fmt.Sprintf("template %s: %s (%v) not carried: %s", id, k, jsonish(f.Value), strings.TrimPrefix(hint, "the IBM field "+k+" is ")))
					continue
				}
				if k == "userDataScript" {
					f.Value = absIn(abs, fmt.Sprint(f.Value))
				}
				out = append(out, yaml.MapItem{Key: k, Value: f.Value})
			}
			templates = append(templates, out)
		}
	}
	if templates == nil {
		templates = []any{}
		notes = append(notes, "awsprov_templates.json holds no templates")
	}
	prov = append(prov, yaml.MapItem{Key: "templates", Value: templates})
	top = append(top, yaml.MapItem{Key: "providers", Value: []any{prov}})

	body, err := yaml.MarshalWithOptions(top, yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		return nil, notes, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# ohfpd configuration imported from %s\n", abs)
	fmt.Fprintf(&b, "# by `ohfp config import-hf`. Check it, then: ohfp config validate FILE\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "# note: %s\n", strings.ReplaceAll(n, "\n", " "))
	}
	b.Write(body)
	yamlText = b.Bytes()

	if _, verr := Parse(yamlText, filepath.Join(abs, "config.yaml")); verr != nil {
		return yamlText, notes, fmt.Errorf("the imported configuration does not validate; fix these in the output:\n%w", verr)
	}
	return yamlText, notes, nil
}

func absIn(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func appendDur(prov yaml.MapSlice, key, ibmKey, s string, unit time.Duration, notes *[]string) yaml.MapSlice {
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		*notes = append(*notes, fmt.Sprintf("%s: %q is not an integer; not carried", ibmKey, s))
		return prov
	}
	return append(prov, yaml.MapItem{Key: key, Value: (time.Duration(i) * unit).String()})
}

func jsonish(v any) string {
	if ms, ok := v.(yaml.MapSlice); ok {
		v = ms.ToMap()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
