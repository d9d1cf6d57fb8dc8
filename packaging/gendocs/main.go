// Command gendocs writes the manual pages and shell completions the
// packages install, from one source each:
//
//	ohfp.1      `ohfp help`, the client's own help
//	ohfpd.8     `ohfpd help`, the daemon's own help
//	ohfp.yaml.5 internal/config/reference.md, the configuration reference
//	ohfp.bash, _ohfp (zsh)
//	            the commands and options both helps list
//
// so that a page can say nothing the program does not. build.sh runs it
// (`make package`):
//
//	go run ./packaging/gendocs -bin DIR -reference FILE -version V -out DIR
//
// The help texts follow one layout: a first line "NAME VERSION - what";
// sections are lines ending in ':' (a heading may run over lines, and a
// parenthesis at its end is a note on the section: "Operator commands
// (who may run them):"); entries are lines indented by two spaces,
// "TERM  description", the description aligned in a column and continued on
// more indented lines; an entry with no description followed by another is
// another form of the same entry ("return MACHINE..." then "return --request
// REQ  description"); other lines are paragraphs.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

func main() {
	bin := flag.String("bin", "bin", "folder holding the built ohfp and ohfpd")
	ref := flag.String("reference", "internal/config/reference.md", "the configuration reference")
	version := flag.String("version", "", "the package version, for the page footers")
	out := flag.String("out", "", "output folder")
	flag.Parse()
	if *out == "" || *version == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gendocs -bin DIR -reference FILE -version V -out DIR")
		os.Exit(2)
	}
	if err := run(*bin, *ref, *version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(bin, ref, version, out string) error {
	date := time.Now().UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err == nil {
			date = time.Unix(sec, 0).UTC()
		}
	}
	day := date.Format("2006-01-02")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	client, err := helpOf(filepath.Join(bin, "ohfp"))
	if err != nil {
		return err
	}
	daemon, err := helpOf(filepath.Join(bin, "ohfpd"))
	if err != nil {
		return err
	}
	md, err := os.ReadFile(ref)
	if err != nil {
		return err
	}
	footer := fmt.Sprintf(".TH %%s %%s %q %q %q\n", day, "ohfp "+version, "ohfp manual")
	pages := map[string][]byte{
		"ohfp.1": helpPage(client, fmt.Sprintf(footer, "OHFP", "1"), []section{
			{"FILES", "/run/ohfp/ohfp.sock, the socket of ohfpd. /usr/libexec/ohfp/hf/, HF's provider scripts: symlinks to ohfp named <operation>.sh."},
			{"SEE ALSO", "ohfpd(8), ohfp.yaml(5); /usr/share/doc/ohfp/README.md, the operator's guide."},
		}),
		"ohfpd.8":     helpPage(daemon, fmt.Sprintf(footer, "OHFPD", "8"), nil),
		"ohfp.yaml.5": markdownPage(string(md), fmt.Sprintf(footer, "OHFP.YAML", "5"), "ohfp.yaml \\- configuration of ohfpd, the Open Host Factory Plugin daemon"),
	}
	for name, page := range pages {
		if err := writeGzip(filepath.Join(out, name+".gz"), page); err != nil {
			return err
		}
	}
	cmds := commandsOf(client, daemon)
	if err := os.WriteFile(filepath.Join(out, "ohfp.bash"), bashCompletion(cmds), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "_ohfp"), zshCompletion(cmds), 0o644)
}

// helpOf runs `PROGRAM help`: the help as the program prints it.
func helpOf(program string) (*help, error) {
	out, err := exec.Command(program, "help").Output()
	if err != nil {
		return nil, fmt.Errorf("%s help: %w", program, err)
	}
	return parseHelp(string(out)), nil
}

// help is a parsed help text.
type help struct {
	name, summary string
	intro         []block // before the first section
	sections      []helpSection
}

type helpSection struct {
	title  string
	blocks []block
}

// block is a paragraph (term empty), an entry (term, text) or a labelled
// paragraph ("Operations: a, b").
type block struct {
	term, text string
	label      bool
	forms      []string // other forms of the entry, said before term
}

var (
	firstLineRe = regexp.MustCompile(`^(\S+) \S+ - (.*)$`)
	labelRe     = regexp.MustCompile(`^([A-Za-z][A-Za-z .-]*[a-z]): (.*)$`)
)

func parseHelp(text string) *help {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	h := &help{}
	if m := firstLineRe.FindStringSubmatch(lines[0]); m != nil {
		h.name, h.summary = m[1], m[2]
	}
	blocks := &h.intro
	open := false // the last block is a paragraph that goes on
	col := 0      // the description column of the current section
	for i := 1; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.TrimSpace(l) == "":
			open = false
		case !strings.HasPrefix(l, " ") && strings.HasSuffix(l, ":"):
			title := strings.TrimSuffix(l, ":")
			// A heading over lines: the paragraph it began is its start.
			if open && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  ") {
				title = (*blocks)[len(*blocks)-1].text + " " + title
				*blocks = (*blocks)[:len(*blocks)-1]
			}
			var note string
			if j := strings.Index(title, " ("); j > 0 && strings.HasSuffix(title, ")") {
				title, note = title[:j], title[j+2:len(title)-1]
			}
			h.sections = append(h.sections, helpSection{title: title})
			blocks = &h.sections[len(h.sections)-1].blocks
			if note != "" {
				*blocks = append(*blocks, block{text: strings.ToUpper(note[:1]) + note[1:] + "."})
			}
			col = descColumn(lines[i+1:])
			open = false
		case !strings.HasPrefix(l, " "):
			if open {
				b := &(*blocks)[len(*blocks)-1]
				b.text += " " + l
			} else if m := labelRe.FindStringSubmatch(l); m != nil {
				// "Operations: a, b": a labelled paragraph of its own.
				*blocks = append(*blocks, block{term: m[1], text: m[2], label: true})
			} else {
				*blocks = append(*blocks, block{text: l})
				open = true
			}
		case strings.HasPrefix(l, "   ") && len(*blocks) > 0 && (*blocks)[len(*blocks)-1].term != "" && !(*blocks)[len(*blocks)-1].label:
			b := &(*blocks)[len(*blocks)-1]
			b.text = strings.TrimSpace(b.text + " " + strings.TrimSpace(l))
		default:
			term, desc := splitEntry(l[2:], col-2)
			if n := len(*blocks); n > 0 && (*blocks)[n-1].term != "" && !(*blocks)[n-1].label && (*blocks)[n-1].text == "" {
				// The entry before had no description: another form of this one.
				prev := (*blocks)[n-1]
				(*blocks)[n-1] = block{term: term, text: desc, forms: append(prev.forms, prev.term)}
			} else {
				*blocks = append(*blocks, block{term: term, text: desc})
			}
			open = false
		}
	}
	return h
}

var gapRe = regexp.MustCompile(`\S( {2,})\S`)

// descColumn is the column most entries of a section start their
// description at.
func descColumn(lines []string) int {
	count := map[int]int{}
	for _, l := range lines {
		if !strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "   ") {
			if strings.TrimSpace(l) == "" || !strings.HasPrefix(l, " ") {
				break
			}
			continue
		}
		if m := gapRe.FindStringSubmatchIndex(l); m != nil {
			count[m[3]]++
		}
	}
	best, n := 0, 0
	for c, k := range count {
		if k > n || k == n && c < best {
			best, n = c, k
		}
	}
	return best
}

// splitEntry splits "TERM  description": at the first gap of two spaces or
// more, else at the section's description column.
func splitEntry(s string, col int) (term, desc string) {
	if m := gapRe.FindStringSubmatchIndex(s); m != nil {
		return s[:m[2]], strings.TrimSpace(s[m[3]:])
	}
	if col > 0 && col < len(s) && s[col-1] == ' ' {
		return strings.TrimSpace(s[:col]), strings.TrimSpace(s[col:])
	}
	return strings.TrimSpace(s), ""
}

type section struct{ title, text string }

// helpPage turns a help into a man page; extra sections follow it.
func helpPage(h *help, th string, extra []section) []byte {
	var b bytes.Buffer
	b.WriteString(th)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", h.name, roff(h.summary))
	writeBlocks := func(blocks []block) {
		for _, bl := range blocks {
			if bl.term == "" {
				fmt.Fprintf(&b, ".PP\n%s\n", roff(bl.text))
			} else {
				b.WriteString(".TP\n")
				for _, f := range bl.forms {
					fmt.Fprintf(&b, ".B %s\n.TQ\n", roffArg(f))
				}
				fmt.Fprintf(&b, ".B %s\n%s\n", roffArg(bl.term), roff(bl.text))
			}
		}
	}
	for _, s := range h.sections {
		title := strings.ToUpper(s.title)
		if title == "USAGE" {
			title = "SYNOPSIS"
		}
		fmt.Fprintf(&b, ".SH %s\n", quoteArg(title))
		writeBlocks(s.blocks)
		if title == "SYNOPSIS" && len(h.intro) > 0 {
			b.WriteString(".SH DESCRIPTION\n")
			writeBlocks(h.intro)
		}
	}
	for _, s := range extra {
		fmt.Fprintf(&b, ".SH %s\n%s\n", quoteArg(s.title), roff(s.text))
	}
	return b.Bytes()
}

// markdownPage turns the configuration reference (headings, paragraphs,
// lists, fenced code and tables, inline code and bold) into a man page.
func markdownPage(md, th, name string) []byte {
	var b bytes.Buffer
	b.WriteString(th)
	fmt.Fprintf(&b, ".SH NAME\n%s\n.SH DESCRIPTION\n", name)
	lines := strings.Split(md, "\n")
	var para []string
	flush := func() {
		if len(para) > 0 {
			fmt.Fprintf(&b, ".PP\n%s\n", inline(strings.Join(para, " ")))
			para = nil
		}
	}
	var header []string // the current table's column names
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "# "):
			flush() // the title: NAME says it
		case strings.HasPrefix(l, "## "):
			flush()
			fmt.Fprintf(&b, ".SH %s\n", quoteArg(strings.ToUpper(strings.TrimPrefix(l, "## "))))
		case strings.HasPrefix(l, "### "):
			flush()
			fmt.Fprintf(&b, ".SS %s\n", quoteArg(strings.TrimPrefix(l, "### ")))
		case strings.HasPrefix(l, "```"):
			flush()
			b.WriteString(".PP\n.RS 4\n.nf\n")
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
				fmt.Fprintf(&b, "%s\n", roff(lines[i]))
			}
			b.WriteString(".fi\n.RE\n")
		case strings.HasPrefix(l, "|"):
			flush()
			cells := tableCells(l)
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "|---") {
				header = cells
				i++
				continue
			}
			// One entry per row: the first cells as the tag, the last
			// as the text, the others named by their column.
			var tag []string
			for _, c := range cells[:1] {
				if c != "" {
					tag = append(tag, c)
				}
			}
			var text []string
			for j := 1; j < len(cells)-1; j++ {
				if cells[j] != "" && j < len(header) {
					text = append(text, header[j]+": "+cells[j]+".")
				}
			}
			text = append(text, cells[len(cells)-1])
			if len(tag) == 0 && len(cells) > 1 {
				tag, text = []string{cells[1]}, text[1:]
			}
			fmt.Fprintf(&b, ".TP\n%s\n%s\n", inline(strings.Join(tag, ", ")), inline(strings.Join(text, " ")))
		case strings.HasPrefix(l, "- "):
			flush()
			item := strings.TrimPrefix(l, "- ")
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  ") {
				i++
				item += " " + strings.TrimSpace(lines[i])
			}
			fmt.Fprintf(&b, ".IP \\(bu 2\n%s\n", inline(item))
		case strings.TrimSpace(l) == "":
			flush()
		default:
			para = append(para, strings.TrimSpace(l))
		}
	}
	flush()
	b.WriteString(".SH SEE ALSO\nohfpd(8), ohfp(1); /usr/share/doc/ohfp/reference.md, the same reference in Markdown.\n")
	return b.Bytes()
}

func tableCells(l string) []string {
	l = strings.TrimSpace(l)
	l = strings.TrimPrefix(strings.TrimSuffix(l, "|"), "|")
	var cells []string
	for _, c := range strings.Split(l, "|") {
		cells = append(cells, strings.TrimSpace(c))
	}
	return cells
}

var (
	codeRe = regexp.MustCompile("`([^`]*)`")
	boldRe = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	linkRe = regexp.MustCompile(`\[([^\]]+)\]\([^)]*\)`)
)

// inline renders Markdown's inline code, bold and links.
func inline(s string) string {
	s = linkRe.ReplaceAllString(s, "$1")
	s = roff(s)
	s = codeRe.ReplaceAllString(s, `\fB$1\fR`)
	s = boldRe.ReplaceAllString(s, `\fB$1\fR`)
	return s
}

// roff escapes text for a roff text line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\u2014':
			b.WriteString(`\(em`)
		case r == '\u2013':
			b.WriteString(`\(en`)
		case r > 0x7e:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	s = b.String()
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffArg escapes text for a macro's arguments, quoted as one.
func roffArg(s string) string { return quoteArg(roff(s)) }

func quoteArg(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"`
}

func writeGzip(path string, data []byte) error {
	var b bytes.Buffer
	z, err := gzip.NewWriterLevel(&b, gzip.BestCompression) // gzip -9n: no name, no time
	if err != nil {
		return err
	}
	z.Write(data)
	if err := z.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// commands are the words the completions offer.
type commands struct {
	client    []word            // ohfp's operations and commands
	clientSub map[string][]word // their subcommands (config reload, requests watch)
	clientOpt []string          // ohfp's options
	cmdOpt    map[string][]string
	daemon    []word // ohfpd's subcommands
	daemonOpt []string
	subOpt    map[string][]string // ohfpd's subcommands' options
	valueOpt  []string            // options that take a value, in either help
}

type word struct{ name, desc string }

var (
	optRe  = regexp.MustCompile(`(?:^|[\s\[,])(--?[a-z][a-z-]*)`)
	wordRe = regexp.MustCompile(`^[a-z][a-z-]*$`)
	// "--config FILE", "[--interval D]", "-f, --file FILE"
	valueOptRe = regexp.MustCompile(`(?:^|[\s\[,])(--?[a-z][a-z-]*) [A-Z][A-Z]*\b`)
)

func commandsOf(client, daemon *help) commands {
	c := commands{clientSub: map[string][]word{}, cmdOpt: map[string][]string{}, subOpt: map[string][]string{}}
	addWord := func(ws []word, w word) []word {
		if slices.ContainsFunc(ws, func(x word) bool { return x.name == w.name }) {
			return ws
		}
		return append(ws, w)
	}
	for _, s := range client.sections {
		switch {
		case strings.HasSuffix(s.title, " commands"): // Sysadmin, Operator
			for _, e := range entries(s) {
				for _, term := range append(slices.Clone(e.forms), e.term) {
					f := strings.Fields(term)
					c.client = addWord(c.client, word{f[0], e.text})
					if len(f) > 1 && wordRe.MatchString(f[1]) {
						c.clientSub[f[0]] = addWord(c.clientSub[f[0]], word{f[1], e.text})
					}
					for _, m := range optRe.FindAllStringSubmatch(term, -1) {
						if !slices.Contains(c.cmdOpt[f[0]], m[1]) {
							c.cmdOpt[f[0]] = append(c.cmdOpt[f[0]], m[1])
						}
					}
				}
			}
		case s.title == "Options":
			for _, e := range entries(s) {
				for _, m := range optRe.FindAllStringSubmatch(e.term, -1) {
					c.clientOpt = append(c.clientOpt, m[1])
				}
			}
		}
	}
	// The HF operations: the labelled paragraph "Operations: a, b, ...".
	for _, s := range client.sections {
		for _, bl := range s.blocks {
			if bl.label && bl.term == "Operations" {
				var ops []word
				for _, op := range strings.Split(bl.text, ",") {
					ops = append(ops, word{strings.TrimSpace(op), "the HF operation"})
				}
				c.client = append(ops, c.client...)
			}
		}
	}
	for _, s := range daemon.sections {
		switch {
		case s.title == "Usage":
			for _, e := range entries(s) {
				f := strings.Fields(e.term)
				if len(f) > 1 && wordRe.MatchString(f[1]) {
					c.daemon = addWord(c.daemon, word{f[1], e.text})
				}
			}
		case s.title == "Options":
			for _, e := range entries(s) {
				for _, m := range optRe.FindAllStringSubmatch(e.term, -1) {
					c.daemonOpt = append(c.daemonOpt, m[1])
				}
			}
		case strings.HasSuffix(s.title, " options"):
			sub := strings.TrimSuffix(s.title, " options")
			for _, e := range entries(s) {
				for _, m := range optRe.FindAllStringSubmatch(e.term, -1) {
					c.subOpt[sub] = append(c.subOpt[sub], m[1])
				}
			}
		}
	}
	c.daemonOpt = append(c.daemonOpt, "--help")
	for _, h := range []*help{client, daemon} {
		for _, s := range h.sections {
			for _, e := range entries(s) {
				for _, m := range valueOptRe.FindAllStringSubmatch(strings.Join(append(slices.Clone(e.forms), e.term), " "), -1) {
					if !slices.Contains(c.valueOpt, m[1]) {
						c.valueOpt = append(c.valueOpt, m[1])
					}
				}
			}
		}
	}
	return c
}

// entries are a section's entries, not its paragraphs.
func entries(s helpSection) []block {
	var out []block
	for _, b := range s.blocks {
		if b.term != "" && !b.label {
			out = append(out, b)
		}
	}
	return out
}

func names(ws []word) string {
	var n []string
	for _, w := range ws {
		n = append(n, w.name)
	}
	return strings.Join(n, " ")
}

func bashCompletion(c commands) []byte {
	var b bytes.Buffer
	b.WriteString(strings.Replace(`# bash completion for ohfp(1) and ohfpd(8). Generated by packaging/gendocs
# from the programs' own help: do not edit.

# _ohfp_cmd prints the first word after the command that is not an option
# or an option's value, and the word after it.
_ohfp_words() {
    local i w skip= n=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ -n $skip ]]; then skip=; continue; fi
        case $w in
            VALUEOPTS) skip=1 ;;
            -*) ;;
            *) printf '%s\n' "$w"; n=$((n + 1)); [[ $n -ge 2 ]] && return ;;
        esac
    done
}
`, "VALUEOPTS", strings.Join(c.valueOpt, "|"), 1))
	b.WriteString(`
_ohfp() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()
    case $prev in
        -f|--file|-o|--socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --wait|--interval|--request|--provider) return ;;
    esac
    local words cmd sub
    mapfile -t words < <(_ohfp_words)
    cmd=${words[0]} sub=${words[1]}
    if [[ $cur == -* ]]; then
        local opts="`)
	b.WriteString(strings.Join(c.clientOpt, " "))
	b.WriteString(`"
        case $cmd in
`)
	for _, w := range c.client {
		if o := c.cmdOpt[w.name]; len(o) > 0 {
			fmt.Fprintf(&b, "            %s) opts=\"$opts %s\" ;;\n", w.name, strings.Join(o, " "))
		}
	}
	b.WriteString(`        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "`)
	b.WriteString(names(c.client))
	b.WriteString(`" -- "$cur"))
        return
    fi
    case $cmd in
`)
	for _, w := range c.client {
		if subs := c.clientSub[w.name]; len(subs) > 0 {
			fmt.Fprintf(&b, "        %s) [[ -z $sub ]] && COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", w.name, names(subs))
		}
	}
	b.WriteString(`    esac
    if [[ $cmd == config && -n $sub && $sub != reload ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

_ohfpd() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()
    case $prev in
        --config|-o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --name|--listen|--region|--launch-delay|--terminate-delay) return ;;
    esac
    local words sub
    mapfile -t words < <(_ohfp_words)
    sub=${words[0]}
    if [[ $cur == -* ]]; then
        case $sub in
`)
	for _, w := range c.daemon {
		if o := c.subOpt[w.name]; len(o) > 0 {
			fmt.Fprintf(&b, "            %s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", w.name, strings.Join(append(o, "--help"), " "))
		}
	}
	fmt.Fprintf(&b, "            *) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", strings.Join(c.daemonOpt, " "))
	b.WriteString(`        esac
        return
    fi
    if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "`)
	b.WriteString(names(c.daemon))
	b.WriteString(`" -- "$cur"))
    elif [[ $sub == import-hf ]]; then
        COMPREPLY=($(compgen -d -- "$cur"))
    fi
}

complete -F _ohfp ohfp
complete -F _ohfpd ohfpd
`)
	return b.Bytes()
}

func zshWords(ws []word) string {
	var b strings.Builder
	for _, w := range ws {
		d := strings.NewReplacer(`'`, `'\''`, `:`, `\:`, "[", `\[`, "]", `\]`).Replace(w.desc)
		fmt.Fprintf(&b, "        '%s:%s'\n", w.name, d)
	}
	return b.String()
}

func zshCompletion(c commands) []byte {
	var b bytes.Buffer
	b.WriteString(`#compdef ohfp ohfpd
# zsh completion for ohfp(1) and ohfpd(8). Generated by packaging/gendocs
# from the programs' own help: do not edit.

_ohfp_client() {
    local -a cmds opts
    cmds=(
`)
	b.WriteString(zshWords(c.client))
	fmt.Fprintf(&b, "    )\n    opts=(%s)\n", strings.Join(c.clientOpt, " "))
	b.WriteString(`    local -a words_
    words_=(${words[2,CURRENT-1]:#-*})
    if [[ $words[CURRENT-1] == (-f|--file|-o|--socket) ]]; then
        _files
    elif [[ $PREFIX == -* ]]; then
        compadd -a opts
`)
	for _, w := range c.client {
		if o := c.cmdOpt[w.name]; len(o) > 0 {
			fmt.Fprintf(&b, "        [[ ${words_[1]} == %s ]] && compadd -- %s\n", w.name, strings.Join(o, " "))
		}
	}
	b.WriteString(`    elif (( ${#words_} == 0 )); then
        _describe -t commands 'ohfp command' cmds
`)
	for _, w := range c.client {
		if subs := c.clientSub[w.name]; len(subs) > 0 {
			fmt.Fprintf(&b, "    elif [[ ${words_[1]} == %s ]] && (( ${#words_} == 1 )); then\n        local -a subs\n        subs=(\n%s        )\n        _describe -t commands 'ohfp %s subcommand' subs\n", w.name, zshWords(subs), w.name)
		}
	}
	b.WriteString(`    elif [[ ${words_[1]} == config ]]; then
        _files
    fi
}

_ohfp_daemon() {
    local -a subs
    subs=(
`)
	b.WriteString(zshWords(c.daemon))
	b.WriteString(`    )
    local -a words_
    words_=(${words[2,CURRENT-1]:#-*})
    if [[ $words[CURRENT-1] == (--config|-o) ]]; then
        _files
    elif [[ $PREFIX == -* ]]; then
        case ${words_[1]} in
`)
	for _, w := range c.daemon {
		if o := c.subOpt[w.name]; len(o) > 0 {
			fmt.Fprintf(&b, "            %s) compadd -- %s --help ;;\n", w.name, strings.Join(o, " "))
		}
	}
	fmt.Fprintf(&b, "            *) compadd -- %s ;;\n", strings.Join(c.daemonOpt, " "))
	b.WriteString(`        esac
    elif (( ${#words_} == 0 )); then
        _describe -t commands 'ohfpd subcommand' subs
    elif [[ ${words_[1]} == import-hf ]]; then
        _files -/
    fi
}

case $service in
    ohfpd) _ohfp_daemon "$@" ;;
    *) _ohfp_client "$@" ;;
esac
`)
	return b.Bytes()
}
