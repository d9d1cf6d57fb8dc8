package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// ImportOptions adjust ImportHF.
type ImportOptions struct {
	// Name is the provider's name. Empty: the name HF's hostProviders.json
	// (beside the folder, as in $HF_TOP/conf/providers/) gives the
	// provider instance whose confPath is the folder, else "aws".
	Name string
	// Output is where the YAML will be saved, for the header and the
	// messages, and the folder its relative paths (user_data.sh beside
	// it) are checked in; empty for standard output, checked as if saved
	// in the current folder.
	Output string
}

// ImportHF reads IBM's awsprov_config.json and awsprov_templates.json from
// dir (an HF provider's configuration folder) and writes an equivalent,
// self-contained ohfpd YAML configuration: the settings under one provider,
// the templates inline. notes lists, once, what the configuration does
// differently from IBM's files: settings and fields ohfp does not carry
// that would have changed something, and template fields dropped because
// they are empty (IBM's plugin treats them as unset; ohfpd warns of them).
// Other settings that change nothing (empty settings, features turned
// off, IBM's defaults) are dropped without a note.
//
// The YAML is validated; err reports files it could not read, or a result
// that does not load (the YAML is still returned then, for the person to
// fix), with the problems located in the output.
func ImportHF(dir string, opts ImportOptions) (yamlText []byte, notes []string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	var notes0 []string
	name, from := opts.Name, ""
	var others []string
	if name == "" {
		name, from, others = hfProviderName(abs)
		if from == "" {
			name = "" // no hostProviders.json to go by: the files' names tell
		}
	}
	cfgPath, tplPath, skipped, err := hfFiles(abs, name)
	if err != nil {
		return nil, nil, err
	}
	cfgBase, tplBase := filepath.Base(cfgPath), filepath.Base(tplPath)
	for _, f := range skipped {
		inst := strings.TrimSuffix(f, "prov_templates.json")
		notes0 = append(notes0, fmt.Sprintf("%s is another instance's (%s) and is not converted: ohfpd import-hf --name %s %s converts it", f, inst, inst, abs))
	}
	// The folder the YAML will be in: its relative paths are resolved there.
	saveDir, err := filepath.Abs(filepath.Dir(opts.Output))
	if opts.Output == "" {
		saveDir, err = os.Getwd()
	}
	if err != nil {
		return nil, nil, err
	}
	if opts.Name == "" {
		if len(others) > 0 {
			notes0 = append(notes0, fmt.Sprintf("%s names this folder for %d providers (%s, %s): the provider is named %s; --name NAME picks another (with one provider, ohfpd answers HF for every name)",
				from, len(others)+1, name, strings.Join(others, ", "), name))
		}
		if from == "" {
			// No hostProviders.json: the instance the files are named for.
			name = strings.TrimSuffix(tplBase, "prov_templates.json")
		}
	}
	if !providerNameRe.MatchString(name) {
		return nil, nil, fmt.Errorf("provider name %q: use 1-64 of letters, digits, '.', '_' and '-'", name)
	}

	notes = notes0
	prov := yaml.MapSlice{{Key: "name", Value: name}}
	top := yaml.MapSlice{
		{Key: "socket", Value: DefaultSocket},
		{Key: "state_dir", Value: DefaultStateDir},
	}

	// <instance>prov_config.json: optional.
	if data, rerr := os.ReadFile(cfgPath); rerr == nil {
		var m yaml.MapSlice
		if err := yaml.UnmarshalWithOptions(data, &m, yaml.UseOrderedMap()); err != nil {
			return nil, notes, fmt.Errorf("%s: %s", cfgPath, yaml.FormatError(err, false, true))
		}
		var host, port, creation string
		for _, kv := range m {
			k := fmt.Sprint(kv.Key)
			val := kv.Value
			sval := strings.TrimSpace(fmt.Sprint(val))
			if val == nil || sval == "" || (k == "AWS_PROXY_PORT" && sval == "0") {
				continue // IBM's plugin takes an empty value (and port 0) as unset
			}
			switch k {
			case "AWS_REGION":
				prov = append(prov, yaml.MapItem{Key: "region", Value: sval})
			case "AWS_CREDENTIAL_FILE":
				prov = append(prov, yaml.MapItem{Key: "credentials_file", Value: absIn(abs, sval)})
			case "AWS_KEY_FILE":
				kf := absIn(abs, sval)
				prov = append(prov, yaml.MapItem{Key: "key_file", Value: kf})
				note := fmt.Sprintf("%s: AWS_KEY_FILE is carried as key_file, which ohfpd does not use (instances get the template's keyName); only its permissions are checked", cfgBase)
				if _, err := os.Stat(kf); err != nil {
					note += fmt.Sprintf("; %s cannot be read (%v): ohfpd --check-config warns of it until it exists or key_file is removed", kf, errors.Unwrap(err))
				}
				notes = append(notes, note)
			case "AWS_ENDPOINT_URL":
				if !strings.Contains(sval, "://") {
					sval = "https://" + sval // IBM's plugin takes it without the scheme
				}
				prov = append(prov, yaml.MapItem{Key: "endpoint_url", Value: sval})
			case "AWS_PROXY_HOST":
				host = sval
			case "AWS_PROXY_PORT":
				port = sval
			case "AWS_CONNECTION_TIMEOUT_MS":
				prov = appendDur(prov, "connection_timeout", k, sval, time.Millisecond, time.Millisecond, time.Hour, &notes)
			case "AWS_INSTANCE_PENDING_TIMEOUT_SEC":
				prov = appendDur(prov, "pending_timeout", k, sval, time.Second, MinPendingTimeout, MaxPendingTimeout, &notes)
			case "AWS_DESCRIBE_REQUEST_INTERVAL":
				prov = appendDur(prov, "describe_interval", k, sval, time.Millisecond, 0, 10*time.Minute, &notes)
			case "AWS_REQUEST_RETRY_ATTEMPTS", "AWS_DESCRIBE_REQUEST_RETRY_ATTEMPTS":
				key := "retry_attempts"
				if k == "AWS_DESCRIBE_REQUEST_RETRY_ATTEMPTS" {
					key = "describe_retry_attempts"
				}
				if i, err := strconv.Atoi(sval); err == nil {
					if i > MaxRetryAttempts {
						notes = append(notes, fmt.Sprintf("%s: %d is above ohfp's maximum; %s %d is used", k, i, key, MaxRetryAttempts))
						i = MaxRetryAttempts
					}
					if i < 0 {
						notes = append(notes, fmt.Sprintf("%s: %d is not a count; not carried (ohfp's default is used)", k, i))
						continue
					}
					prov = append(prov, yaml.MapItem{Key: key, Value: i})
				} else {
					notes = append(notes, fmt.Sprintf("%s: %q is not an integer; not carried", k, sval))
				}
			case "ACCEPT_PROPAGATED_LOG_SETTING", "AWS_SPOT_TERMINATE_ON_RECLAIM", "AWS_TAG_InstanceID":
				b, err := strconv.ParseBool(sval)
				if err != nil {
					notes = append(notes, fmt.Sprintf("%s: %q is not true or false; not carried", k, sval))
					continue
				}
				if b || k == "ACCEPT_PROPAGATED_LOG_SETTING" {
					prov = append(prov, yaml.MapItem{Key: map[string]string{
						"ACCEPT_PROPAGATED_LOG_SETTING": "accept_propagated_log_setting",
						"AWS_SPOT_TERMINATE_ON_RECLAIM": "spot_terminate_on_reclaim",
						"AWS_TAG_InstanceID":            "tag_instance_id",
					}[k], Value: b})
				}
			case "INSTANCE_CREATION_TIMEOUT":
				creation = sval
			case "AWS_CREDENTIAL_SCRIPT":
				prov = append(prov, yaml.MapItem{Key: "credential_script", Value: absIn(abs, sval)})
			case "AWS_CREDENTIAL_RENEW_MARGIN":
				prov = appendDur(prov, "credential_renew_margin", k, sval, time.Second, 0, 24*time.Hour, &notes)
			case "LogLevel", "LOG_LEVEL":
				lvl := map[string]string{"TRACE": "debug", "DEBUG": "debug", "INFO": "info", "WARN": "warn", "WARNING": "warn", "ERROR": "error", "FATAL": "error"}[strings.ToUpper(sval)]
				if lvl == "" {
					notes = append(notes, fmt.Sprintf("%s: %q is not a known level; not carried", k, sval))
					continue
				}
				if lvl != "info" { // info is ohfpd's default
					top = append(top, yaml.MapItem{Key: "log_level", Value: lvl})
				}
			default:
				if !asksForNothing(val) {
					notes = append(notes, fmt.Sprintf("%s: %s (%s) is not supported by ohfp; not carried", cfgBase, k, sval))
				}
			}
		}
		if creation != "" && !hasKey(prov, "pending_timeout") {
			if m, err := strconv.Atoi(creation); err == nil && m > 0 {
				dur := min(max(time.Duration(m)*time.Minute, MinPendingTimeout), MaxPendingTimeout)
				prov = append(prov, yaml.MapItem{Key: "pending_timeout", Value: dur.String()})
				notes = append(notes, fmt.Sprintf("%s: INSTANCE_CREATION_TIMEOUT %s minutes is carried as pending_timeout %s: an instance not running by then is failed and terminated", cfgBase, creation, dur))
			}
		}
		switch {
		case host != "" && port != "":
			prov = append(prov, yaml.MapItem{Key: "proxy", Value: strings.TrimPrefix(strings.TrimPrefix(host, "http://"), "https://") + ":" + port})
		case host != "":
			notes = append(notes, fmt.Sprintf("%s: AWS_PROXY_HOST %s is given without AWS_PROXY_PORT: no proxy is carried; add proxy: %s:PORT", cfgBase, host, host))
		case port != "":
			notes = append(notes, fmt.Sprintf("%s: AWS_PROXY_PORT %s is given without AWS_PROXY_HOST: no proxy is used", cfgBase, port))
		}
	} else if !errors.Is(rerr, os.ErrNotExist) {
		return nil, notes, rerr
	}

	// <instance>prov_templates.json: required.
	data, err := os.ReadFile(tplPath)
	if err != nil {
		return nil, notes, err
	}
	var doc yaml.MapSlice
	if err := yaml.UnmarshalWithOptions(data, &doc, yaml.UseOrderedMap()); err != nil {
		return nil, notes, fmt.Errorf("%s: %s", tplPath, yaml.FormatError(err, false, true))
	}
	var templates []any
	usesUserData := false
	for _, kv := range doc {
		if fmt.Sprint(kv.Key) != "templates" {
			notes = append(notes, fmt.Sprintf("%s: top-level %s is not a template list; not carried", tplBase, kv.Key))
			continue
		}
		list, ok := kv.Value.([]any)
		if !ok {
			return nil, notes, fmt.Errorf("%s: templates is not a list", tplPath)
		}
		for i, item := range list {
			tm, ok := item.(yaml.MapSlice)
			if !ok {
				notes = append(notes, fmt.Sprintf("%s: templates[%d] is not an object; not carried", tplBase, i))
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
				if s, isStr := f.Value.(string); f.Value == nil || isStr && strings.TrimSpace(s) == "" {
					continue // IBM's plugin takes an empty value as unset
				}
				known := false
				for _, n := range templateFieldNames {
					known = known || n == k
				}
				if !known {
					if asksForNothing(f.Value) {
						continue // e.g. ebsOptimized: false, what EC2 does anyway
					}
					hint := "not an ohfp template field"
					if h, ok := unsupportedIBM[k]; ok {
						hint = "not supported by ohfp; " + h
					}
					notes = append(notes, fmt.Sprintf("template %s: %s (%v) is %s", id, k, jsonish(f.Value), hint))
					continue
				}
				if b, isBool := f.Value.(bool); isBool && !b {
					continue // false is every switch's default (ebsOptimized)
				}
				if l, isList := f.Value.([]any); isList && (k == "securityGroupIds" || k == "subnetId") {
					// IBM's plugin drops empty ids ("securityGroupIds": [""]).
					var kept []any
					for _, x := range l {
						if strings.TrimSpace(fmt.Sprint(x)) != "" {
							kept = append(kept, x)
						}
					}
					if len(kept) == 0 {
						continue
					}
					f.Value = kept
				}
				switch k {
				case "userDataScript", "ec2FleetConfig":
					f.Value = absIn(abs, fmt.Sprint(f.Value))
				case "userData":
					usesUserData = true
				}
				out = append(out, yaml.MapItem{Key: k, Value: f.Value})
			}
			templates = append(templates, out)
		}
	}
	notes = append(notes, ibmTemplateNotes(abs, tplBase)...)
	if templates == nil {
		templates = []any{}
		notes = append(notes, tplBase+" holds no templates")
	}
	if usesUserData {
		// userData is variables for IBM's user_data.sh, which IBM's
		// plugin keeps in its scripts folder; ohfp needs it named.
		if _, err := os.Stat(filepath.Join(abs, DefaultUserDataTemplateName)); err == nil {
			prov = append(prov, yaml.MapItem{Key: "user_data_template", Value: filepath.Join(abs, DefaultUserDataTemplateName)})
		} else if _, err := os.Stat(filepath.Join(saveDir, DefaultUserDataTemplateName)); err == nil {
			// ohfpd's default: user_data.sh beside the configuration.
		} else {
			notes = append(notes, "templates set userData, variables for IBM's user_data.sh: copy the one your hosts boot with (IBM's plugin folder, scripts/user_data.sh) beside this file, or name it in user_data_template (the package installs /etc/ohfp/user_data.sh)")
		}
	}
	prov = append(prov, yaml.MapItem{Key: "templates", Value: templates})
	top = append(top, yaml.MapItem{Key: "providers", Value: []any{prov}})

	body, err := yaml.MarshalWithOptions(top, yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		return nil, notes, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# ohfpd configuration, imported from IBM's files in %s\n", abs)
	if from != "" {
		fmt.Fprintf(&b, "# by ohfpd import-hf; the provider's name is %s's in %s.\n", name, from)
	} else {
		fmt.Fprintf(&b, "# by ohfpd import-hf.\n")
	}
	if opts.Output != "" {
		fmt.Fprintf(&b, "# Check it with: ohfpd --check-config --config %s\n", opts.Output)
	} else {
		fmt.Fprintf(&b, "# Check it where you save it: ohfpd --check-config --config FILE\n")
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, "#\n# What ohfp does differently from IBM's plugin with these files:\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "#   - %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
	b.Write(body)
	yamlText = b.Bytes()

	// Validate the YAML as saved: the paths it carries are absolute; what
	// it leaves to ohfpd's defaults (user_data.sh beside the file) is
	// found in the folder it is saved in.
	at := opts.Output
	if at == "" {
		at = "(standard output)"
	}
	if _, verr := parse(yamlText, at, saveDir); verr != nil {
		where := ""
		if opts.Output == "" {
			where = fmt.Sprintf(" (checked as if saved in the current folder, %s; -o FILE checks it where it goes)", saveDir)
		}
		return yamlText, notes, fmt.Errorf("the imported configuration does not load%s; fix these:\n%w", where, verr)
	}
	return yamlText, notes, nil
}

// hfProviderName finds the name HF gives the provider instance whose
// configuration folder is dir, in the hostProviders.json beside it (IBM's
// layout: $HF_TOP/conf/providers/hostProviders.json and
// $HF_TOP/conf/providers/<instance>/). It returns "aws", the name the
// package's samples register, when there is none to go by; with a single
// provider ohfpd serves every HF_PROVIDER_NAME anyway.
//
// When it gives the folder to several instances, the first is taken and
// others names the rest.
func hfProviderName(dir string) (name, from string, others []string) {
	file := filepath.Join(filepath.Dir(dir), "hostProviders.json")
	data, err := os.ReadFile(file)
	if err != nil {
		return "aws", "", nil
	}
	var doc struct {
		Providers []struct {
			Name     string `json:"name"`
			ConfPath string `json:"confPath"`
		} `json:"providers"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return "aws", "", nil
	}
	for _, p := range doc.Providers {
		// confPath is usually ${HF_CONFDIR}/providers/<instance>/: compare
		// its last element, as HF's variables are not known here.
		if p.Name != "" && filepath.Base(filepath.Clean(p.ConfPath)) == filepath.Base(dir) && providerNameRe.MatchString(p.Name) {
			if name == "" {
				name = p.Name
			} else if p.Name != name && !slices.Contains(others, p.Name) {
				others = append(others, p.Name)
			}
		}
	}
	if name == "" {
		return "aws", "", nil
	}
	return name, file, others
}

// asksForNothing tells whether an IBM setting's value turns nothing on:
// false, 0 or empty, which ohfp's behaviour already matches.
func asksForNothing(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		s := strings.TrimSpace(strings.ToLower(x))
		return s == "" || s == "false" || s == "0"
	case uint64:
		return x == 0
	case int64:
		return x == 0
	case int:
		return x == 0
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func absIn(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// appendDur carries an IBM integer in unit as key, brought within ohfp's
// bounds lo-hi with a note, as ohfpd does when it reads IBM's file: so the
// output loads. 0 below lo is unset (ohfp's default).
func appendDur(prov yaml.MapSlice, key, ibmKey, s string, unit, lo, hi time.Duration, notes *[]string) yaml.MapSlice {
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		*notes = append(*notes, fmt.Sprintf("%s: %q is not an integer; not carried", ibmKey, s))
		return prov
	}
	d := time.Duration(i) * unit
	switch {
	case i < 0:
		*notes = append(*notes, fmt.Sprintf("%s: %d is negative; not carried (ohfp's default is used)", ibmKey, i))
		return prov
	case d > hi:
		*notes = append(*notes, fmt.Sprintf("%s: %d is above ohfp's maximum; %s %s is used", ibmKey, i, key, hi))
		d = hi
	case d < lo && i == 0:
		return prov // IBM's 0: the default
	case d < lo:
		*notes = append(*notes, fmt.Sprintf("%s: %d is below ohfp's minimum; %s %s is used", ibmKey, i, key, lo))
		d = lo
	}
	return append(prov, yaml.MapItem{Key: key, Value: d.String()})
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

func hasKey(m yaml.MapSlice, key string) bool {
	for _, kv := range m {
		if kv.Key == key {
			return true
		}
	}
	return false
}

// hfFiles finds an HF provider folder's files: <instance>prov_templates.json
// and <instance>prov_config.json (awsprov_... for IBM's default instance,
// awsinstprov_... when HF's instance is named awsinst). With one instance's
// files, those. With several: the ones named for name, as hf_conf_dir
// takes them; without a name, the ones named for the folder (HF keeps an
// instance's files in conf/providers/<instance>/); else it is an error
// naming them. skipped lists the other instances' templates files.
func hfFiles(dir, name string) (cfg, tpl string, skipped []string, err error) {
	found, _ := filepath.Glob(filepath.Join(dir, "*prov_templates.json"))
	switch {
	case len(found) == 0:
		return "", "", nil, fmt.Errorf("%s holds no <instance>prov_templates.json (such as awsprov_templates.json): not an HF provider folder", dir)
	case len(found) > 1:
		want := name
		if want == "" {
			want = filepath.Base(dir)
		}
		var pick string
		for _, f := range found {
			if strings.TrimSuffix(filepath.Base(f), "prov_templates.json") == want {
				pick = f
			}
		}
		var names []string
		for _, f := range found {
			names = append(names, filepath.Base(f))
		}
		if pick == "" {
			return "", "", nil, fmt.Errorf("%s holds the templates of several instances (%s): give the provider's name (--name) to pick one", dir, strings.Join(names, ", "))
		}
		for _, n := range names {
			if n != filepath.Base(pick) {
				skipped = append(skipped, n)
			}
		}
		found = []string{pick}
	}
	tpl = found[0]
	cfg = strings.TrimSuffix(tpl, "prov_templates.json") + "prov_config.json"
	return cfg, tpl, skipped, nil
}

// ibmTemplateNotes reads the templates file in dir as ohfpd reads it and
// returns its warnings, located in the file: each field ohfp ignores or
// reads with another meaning (ttl, computeUnit, durationInHours,
// machineCount...), and each empty value or item, taken as unset as IBM's
// plugin does, which the output drops.
func ibmTemplateNotes(dir, base string) []string {
	var errs []error
	var warns []string
	d := &doc{file: base, dir: dir, errs: &errs, warns: &warns}
	ld := readSub(d, filepath.Join(dir, base), value{d: d, key: "templates_file"})
	if ld == nil {
		return nil
	}
	var list *value
	ld.root.decode([]field{{"templates", func(v value) { list = &v }}}, nil)
	if list == nil {
		return nil
	}
	list.key = "templates"
	decodeTemplates(*list, "templates", map[string]string{}, map[string]value{})
	var out []string
	for _, w := range warns {
		if strings.Contains(w, ": empty: taken as unset") || strings.Contains(w, "empty item(s) ignored") {
			w += "; dropped from the output"
		}
		out = append(out, w)
	}
	return out
}
