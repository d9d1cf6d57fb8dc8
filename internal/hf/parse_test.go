package hf

import (
	"errors"
	"strings"
	"testing"
)

// badInputs lists documents every parser must refuse, with a fragment of the
// exact message each must produce.
var badInputs = []struct {
	name string
	op   string
	in   string
	want string
}{
	// The document as a whole.
	{"empty", OpRequestMachines, ``, `requestMachines: input is empty: expected a JSON document such as {"template"`},
	{"blank", OpGetRequestStatus, " \n\t ", `getRequestStatus: input is empty`},
	{"empty templates", OpGetAvailableTemplates, ``, `getAvailableTemplates: input is empty: expected a JSON document such as {}`},
	{"truncated", OpRequestMachines, `{"template": {"templateId": "a"`, `input is not valid JSON: it ends early at line 1, column 32 (truncated document?)`},
	{"open brace", OpGetAvailableTemplates, `{`, `getAvailableTemplates: input is not valid JSON: it ends early at line 1, column 2`},
	{"bad literal", OpRequestMachines, "{\n \"x\": tru}", `input is not valid JSON at line 2, column 10: invalid character '}' in literal true (expecting 'e')`},
	{"trailing comma", OpGetRequestStatus, `{"requests": [{"requestId": "req-1"},]}`, `input is not valid JSON at line 1, column 38: invalid character ']' looking for beginning of value`},
	{"single quotes", OpRequestMachines, `{'template': 1}`, `input is not valid JSON at line 1, column 2: invalid character '\'' looking for beginning of object key string`},
	{"two documents", OpGetAvailableTemplates, `{} {}`, `input is not valid JSON at line 1, column 4: invalid character '{' after top-level value`},
	{"trailing garbage", OpGetAvailableTemplates, `{}x`, `invalid character 'x' after top-level value`},
	{"comment", OpGetAvailableTemplates, `{} // hi`, `invalid character '/' after top-level value`},
	{"raw newline in string", OpGetRequestStatus, "{\"requests\": \"a\nb\"}", `invalid character '\n' in string literal`},
	{"bad escape", OpGetRequestStatus, `{"requests": "\q"}`, `invalid character 'q' in string escape code`},
	{"leading zero", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": 03}}`, `invalid character '3' after object key:value pair`},
	{"NaN", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": NaN}}`, `invalid character 'N' looking for beginning of value`},
	{"plus sign", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": +3}}`, `invalid character '+' looking for beginning of value`},
	{"NUL byte", OpRequestMachines, "{\"template\": \x00}", `requestMachines: input contains a NUL byte at line 1, column 14: send a plain JSON text document`},
	{"NUL after newline", OpGetAvailableTemplates, "{}\n\x00", `input contains a NUL byte at line 2, column 1`},
	{"escaped NUL in value", OpGetRequestStatus, `{"requests": [{"requestId": "req-\u0000"}]}`, `getRequestStatus: requests[0].requestId contains a NUL character (\u0000); remove it`},
	{"escaped NUL in key", OpGetAvailableTemplates, `{"a\u0000": 1}`, `getAvailableTemplates: a` + "\x00" + ` is a key containing a NUL character`},
	{"invalid UTF-8", OpRequestMachines, "{\"template\": \"\xff\"}", `requestMachines: input is not valid UTF-8 at line 1, column 15: send the document encoded in UTF-8`},
	{"overlong UTF-8", OpGetAvailableTemplates, "{\"a\": \"\xc0\xaf\"}", `input is not valid UTF-8 at line 1, column 8`},
	{"UTF-16 BOM", OpGetAvailableTemplates, "\xff\xfe{\x00}\x00", `input contains a NUL byte`},
	{"UTF-8 BOM", OpGetAvailableTemplates, "\xef\xbb\xbf{}", `input is not valid JSON at line 1, column 1: invalid character 'ï' looking for beginning of value`},
	{"oversized", OpGetAvailableTemplates, `{"a": "` + strings.Repeat("x", MaxInputBytes) + `"}`, `getAvailableTemplates: input is 4194313 bytes, more than the 4194304 bytes (4 MiB) ohfp accepts`},
	{"deep nesting", OpGetAvailableTemplates, strings.Repeat("[", 33) + strings.Repeat("]", 33), `input nests objects and arrays deeper than 32 levels at line 1, column 33`},
	{"deep objects", OpRequestMachines, strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), `input nests objects and arrays deeper than 32 levels`},
	{"very deep", OpGetRequestStatus, strings.Repeat("[", 20000), `getRequestStatus: input is not valid JSON`},
	{"duplicate top key", OpGetAvailableTemplates, `{"a": 1, "a": 2}`, `getAvailableTemplates: a appears twice (duplicate key at line 1, column 13); keep only one`},
	{"duplicate templateId", OpRequestMachines, `{"template": {"templateId": "a", "templateId": "b", "machineCount": 1}}`, `requestMachines: template.templateId appears twice`},
	{"duplicate template", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": 1}, "template": {"templateId": "b", "machineCount": 1}}`, `requestMachines: template appears twice`},
	{"duplicate deep key", OpGetRequestStatus, `{"requests": [{"requestId": "a"}, {"requestId": "b", "requestId": "c"}]}`, `getRequestStatus: requests[1].requestId appears twice`},
	{"not an object: list", OpRequestMachines, `[]`, `requestMachines: input must be a JSON object such as {"template": {"templateId": "OnDemand-c5", "machineCount": 3}}, got a list`},
	{"not an object: string", OpGetAvailableTemplates, `"{}"`, `getAvailableTemplates: input must be a JSON object such as {}, got "{}"`},
	{"not an object: null", OpGetReturnRequests, `null`, `input must be a JSON object such as {"machines"`},
	{"not an object: number", OpGetRequestStatus, `42`, `got the number 42`},

	// requestMachines.
	{"no template", OpRequestMachines, `{}`, `requestMachines: template is missing: expected {"template": {"templateId": "OnDemand-c5", "machineCount": 3}}`},
	{"template misspelt", OpRequestMachines, `{"Template": {"templateId": "a", "machineCount": 1}}`, `requestMachines: template is missing`},
	{"template null", OpRequestMachines, `{"template": null}`, `requestMachines: template must be an object such as {"templateId": "OnDemand-c5", "machineCount": 3}, got null`},
	{"template list", OpRequestMachines, `{"template": [{"templateId": "a", "machineCount": 1}]}`, `template must be an object such as {"templateId": "OnDemand-c5", "machineCount": 3}, got a list`},
	{"no templateId", OpRequestMachines, `{"template": {"machineCount": 1}}`, `requestMachines: template.templateId is missing: name one of the templates getAvailableTemplates lists`},
	{"templateId number", OpRequestMachines, `{"template": {"templateId": 5, "machineCount": 1}}`, `requestMachines: template.templateId must be a string naming a template, got the number 5`},
	{"templateId null", OpRequestMachines, `{"template": {"templateId": null, "machineCount": 1}}`, `template.templateId must be a string naming a template, got null`},
	{"templateId empty", OpRequestMachines, `{"template": {"templateId": "", "machineCount": 1}}`, `template.templateId must be 1 to 64 letters, digits, '_' or '-', got ""`},
	{"templateId space", OpRequestMachines, `{"template": {"templateId": "On Demand", "machineCount": 1}}`, `template.templateId must be 1 to 64 letters, digits, '_' or '-', got "On Demand"`},
	{"templateId slash", OpRequestMachines, `{"template": {"templateId": "../etc/passwd", "machineCount": 1}}`, `got "../etc/passwd"`},
	{"templateId unicode", OpRequestMachines, `{"template": {"templateId": "modèle", "machineCount": 1}}`, `got "modèle"`},
	{"templateId emoji", OpRequestMachines, `{"template": {"templateId": "\ud83d\ude00", "machineCount": 1}}`, `got "😀"`},
	{"templateId too long", OpRequestMachines, `{"template": {"templateId": "` + strings.Repeat("a", 65) + `", "machineCount": 1}}`, `template.templateId must be 1 to 64 letters, digits, '_' or '-', got "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"... (65 bytes)`},
	{"no machineCount", OpRequestMachines, `{"template": {"templateId": "a"}}`, `requestMachines: template.machineCount is missing: say how many machines (units) to add, e.g. 3`},
	{"machineCount string", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": "abc"}}`, `requestMachines: template.machineCount must be a positive whole number, got "abc"`},
	{"machineCount numeric string", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": "3"}}`, `template.machineCount must be a positive whole number, got "3"`},
	{"machineCount zero", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": 0}}`, `template.machineCount must be a positive whole number, got 0`},
	{"machineCount negative", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": -2}}`, `template.machineCount must be a positive whole number, got -2`},
	{"machineCount minus zero", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": -0}}`, `template.machineCount must be a positive whole number, got -0`},
	{"machineCount fraction", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": 2.5}}`, `template.machineCount must be a positive whole number, got 2.5`},
	{"machineCount whole fraction", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": 3.0}}`, `template.machineCount must be a positive whole number, got 3.0`},
	{"machineCount exponent", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": 1e3}}`, `template.machineCount must be a positive whole number, got 1e3`},
	{"machineCount huge exponent", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": 1e400}}`, `got 1e400`},
	{"machineCount over cap", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": 100001}}`, `requestMachines: template.machineCount is 100001, more than the 100000 units ohfp accepts in one request; split it into smaller requests`},
	{"machineCount over int64", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": 99999999999999999999999}}`, `template.machineCount is 99999999999999999999999, more than the 100000 units`},
	{"machineCount enormous", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": ` + strings.Repeat("9", 100) + `}}`, `template.machineCount is 99999999999999999999999999999999... (100 digits), more than`},
	{"machineCount bool", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": true}}`, `template.machineCount must be a positive whole number, got true`},
	{"machineCount null", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": null}}`, `template.machineCount must be a positive whole number, got null`},
	{"machineCount list", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": [3]}}`, `template.machineCount must be a positive whole number, got a list`},
	{"machineCount object", OpRequestMachines, `{"template": {"templateId": "a", "machineCount": {"n": 3}}}`, `template.machineCount must be a positive whole number, got an object`},

	// getRequestStatus.
	{"no requests", OpGetRequestStatus, `{}`, `getRequestStatus: requests is missing: expected {"requests": [{"requestId": "req-..."}]}`},
	{"requests string", OpGetRequestStatus, `{"requests": "req-1"}`, `getRequestStatus: requests must be a list of {"requestId": "req-..."} objects, got "req-1"`},
	{"requests null", OpGetRequestStatus, `{"requests": null}`, `requests must be a list of {"requestId": "req-..."} objects, got null`},
	{"request item string", OpGetRequestStatus, `{"requests": ["req-1"]}`, `getRequestStatus: requests[0] must be an object such as {"requestId": "req-..."}, got "req-1"`},
	{"request no id", OpGetRequestStatus, `{"requests": [{"requestId": "req-1"}, {"id": "req-2"}]}`, `getRequestStatus: requests[1].requestId is missing`},
	{"single request no id", OpGetRequestStatus, `{"requests": {}}`, `getRequestStatus: requests.requestId is missing`},
	{"request id empty", OpGetRequestStatus, `{"requests": [{"requestId": ""}]}`, `getRequestStatus: requests[0].requestId is empty: give the id requestMachines or requestReturnMachines answered`},
	{"request id null", OpGetRequestStatus, `{"requests": [{"requestId": null}]}`, `requests[0].requestId is missing`},
	{"request id number", OpGetRequestStatus, `{"requests": [{"requestId": 17}]}`, `getRequestStatus: requests[0].requestId must be a string, got the number 17`},
	{"request id control", OpGetRequestStatus, `{"requests": [{"requestId": "req-\u001b[31m"}]}`, `requests[0].requestId contains a control character, got "req-\x1b[31m"`},
	{"request id too long", OpGetRequestStatus, `{"requests": [{"requestId": "` + strings.Repeat("r", 257) + `"}]}`, `requests[0].requestId is 257 bytes long, more than the 256 ohfp accepts`},

	// requestReturnMachines and getReturnRequests.
	{"return no machines", OpRequestReturnMachines, `{}`, `requestReturnMachines: machines is missing: expected {"machines": [{"name"`},
	{"return machines null", OpRequestReturnMachines, `{"machines": null}`, `requestReturnMachines: machines is missing`},
	{"return machines empty", OpRequestReturnMachines, `{"machines": []}`, `requestReturnMachines: machines is empty: list at least one machine to return`},
	{"return machines string", OpRequestReturnMachines, `{"machines": "i-1"}`, `requestReturnMachines: machines must be a list of {"name": "...", "machineId": "..."} objects, got "i-1"`},
	{"return item number", OpRequestReturnMachines, `{"machines": [1]}`, `requestReturnMachines: machines[0] must be an object such as {"name": "ip-10-0-0-1.ec2.internal", "machineId": "i-0123456789abcdef0"}, got the number 1`},
	{"return item no id", OpRequestReturnMachines, `{"machines": [{"name": "h1"}, {}]}`, `requestReturnMachines: machines[1] needs a machineId or a name`},
	{"return item empty ids", OpRequestReturnMachines, `{"machines": [{"name": "", "machineId": ""}]}`, `machines[0] needs a machineId or a name`},
	{"return machineId number", OpRequestReturnMachines, `{"machines": [{"machineId": 5}]}`, `requestReturnMachines: machines[0].machineId must be a string, got the number 5`},
	{"return name list", OpRequestReturnMachines, `{"machines": [{"machineId": "i-1", "name": ["h"]}]}`, `machines[0].name must be a string, got a list`},
	{"return name control", OpRequestReturnMachines, `{"machines": [{"name": "h\tx"}]}`, `machines[0].name contains a control character, got "h\tx"`},
	{"return single no id", OpRequestReturnMachines, `{"machines": {"foo": 1}}`, `requestReturnMachines: machines needs a machineId or a name`},
	{"getReturn machines number", OpGetReturnRequests, `{"machines": 3}`, `getReturnRequests: machines must be a list of {"name": "...", "machineId": "..."} objects, got the number 3`},
	{"getReturn item bool", OpGetReturnRequests, `{"machines": [true]}`, `getReturnRequests: machines[0] must be an object`},
	{"getReturn no id", OpGetReturnRequests, `{"machines": [{"machineId": null}]}`, `getReturnRequests: machines[0] needs a machineId or a name`},
	{"getReturn duplicate", OpGetReturnRequests, `{"machines": [{"name": "a", "name": "b"}]}`, `getReturnRequests: machines[0].name appears twice`},

	// Unknown operation.
	{"unknown op", "launchRockets", `{}`, `launchRockets: is not an HF operation; use one of getAvailableTemplates, requestMachines, getRequestStatus, requestReturnMachines, getReturnRequests`},
}

func TestBadInputs(t *testing.T) {
	if len(badInputs) < 50 {
		t.Fatalf("only %d bad inputs; keep at least 50", len(badInputs))
	}
	seen := map[string]bool{}
	for _, tc := range badInputs {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.op, []byte(tc.in))
			if err == nil {
				t.Fatalf("accepted %q", clipForLog(tc.in))
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T is not an *InputError: %v", err, err)
			}
			if ie.Op != tc.op {
				t.Errorf("Op = %q, want %q", ie.Op, tc.op)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %s\ndoes not contain\n  %s", err, tc.want)
			}
		})
	}
}

func clipForLog(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func TestGoodInputs(t *testing.T) {
	t.Run("requestMachines ignores extra fields", func(t *testing.T) {
		got, err := ParseRequestMachines([]byte(`{"template": {"templateId": "Spot_c5-2", "machineCount": 100000, "future": {"x": [1, 2]}}, "hfVersion": "7.3"}`))
		if err != nil {
			t.Fatal(err)
		}
		if got != (RequestMachines{TemplateID: "Spot_c5-2", MachineCount: 100000}) {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("templateId of 64 characters", func(t *testing.T) {
		id := strings.Repeat("Z", 64)
		got, err := ParseRequestMachines([]byte(`{"template": {"templateId": "` + id + `", "machineCount": 1}}`))
		if err != nil || got.TemplateID != id || got.MachineCount != 1 {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("status single object", func(t *testing.T) {
		got, err := ParseRequestStatus([]byte(`{"requests": {"requestId": "ret-9"}}`))
		if err != nil || len(got) != 1 || got[0] != "ret-9" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("status keeps order and repeats", func(t *testing.T) {
		got, err := ParseRequestStatus([]byte(`{"requests": [{"requestId": "b"}, {"requestId": "a", "extra": 1}, {"requestId": "b"}]}`))
		if err != nil || strings.Join(got, ",") != "b,a,b" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("status empty list", func(t *testing.T) {
		got, err := ParseRequestStatus([]byte(`{"requests": []}`))
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("got %#v, %v", got, err)
		}
	})
	t.Run("getReturnRequests without machines", func(t *testing.T) {
		got, err := ParseGetReturnRequests([]byte(`{}`))
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("got %#v, %v", got, err)
		}
	})
	t.Run("return by name or id", func(t *testing.T) {
		got, err := ParseReturnMachines([]byte(`{"machines": [{"name": "h1"}, {"machineId": "i-2", "name": null}, {"name": "h3", "machineId": "i-3"}]}`))
		want := []MachineRef{{Name: "h1"}, {MachineID: "i-2"}, {Name: "h3", MachineID: "i-3"}}
		if err != nil || len(got) != len(want) {
			t.Fatalf("got %+v, %v", got, err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
	})
	t.Run("templates ignores fields", func(t *testing.T) {
		if err := ParseGetAvailableTemplates([]byte(" {\"anything\": [1, {\"x\": null}]}\n")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("depth 32 is fine", func(t *testing.T) {
		in := "{\"a\":" + strings.Repeat("[", 31) + strings.Repeat("]", 31) + "}"
		if err := ParseGetAvailableTemplates([]byte(in)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("exactly MaxInputBytes", func(t *testing.T) {
		pad := MaxInputBytes - len(`{"a":""}`)
		in := `{"a":"` + strings.Repeat("x", pad) + `"}`
		if len(in) != MaxInputBytes {
			t.Fatalf("test input is %d bytes", len(in))
		}
		if err := ParseGetAvailableTemplates([]byte(in)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestValidTemplateID(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "OnDemand-c5": true, "x_Y-9": true, strings.Repeat("a", 64): true,
		"": false, strings.Repeat("a", 65): false, "a.b": false, "a b": false, "é": false, "a\n": false,
	} {
		if got := ValidTemplateID(s); got != want {
			t.Errorf("ValidTemplateID(%q) = %v, want %v", s, got, want)
		}
	}
}
