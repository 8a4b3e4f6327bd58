// Command go-template renders Ollama TEMPLATEs with Go's text/template the way Ollama does, so
// NodeAI's tests can compare a Modelfile's TEMPLATE with the Jinja chat template the model was
// trained with. Standard library only, no network.
//
// Input (stdin): a JSON array of cases {"template": "...", "system": "...", "modelFamily": "...",
// "messages": [{"role", "content"}]}; "system" is the Modelfile's SYSTEM and "modelFamily" the
// model's architecture as Ollama records it (both optional). Output (stdout): a JSON array with,
// per case, {"text": "..."} or {"error": "..."}.
//
// What is modelled, from github.com/ollama/ollama (read at fb30760, 2026-08-21):
//   - server/routes.go (ChatHandler): the Modelfile's SYSTEM is put in front of the request's
//     messages as a system message when the first request message is not a system message;
//   - server/routes.go (filterThinkTags, thinking/parser.go): for a model of family qwen3, the
//     <think>…</think> part of each assistant message before the last user message is dropped,
//     with the whitespace around it;
//   - template/template.go (Parse): text/template with Option("missingkey=zero") and Ollama's
//     template functions (json, currentDate, yesterdayDate; toTypeScriptType needs Ollama's API
//     types and is left out: a template using it fails to parse here, loudly);
//   - template/template.go (Execute, collate): a template that uses .Messages gets .System (all
//     system messages joined by "\n\n"), .Messages (consecutive messages of one role merged with
//     "\n\n", except tool messages; system messages stay in the list), .Tools, .Response = "",
//     .Think/.ThinkLevel/.IsThinkSet zero. Ollama's legacy path for templates without .Messages
//     (.Prompt/.Response per turn) is not modelled: such a template is reported as an error.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
)

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type renderCase struct {
	Template    string    `json:"template"`
	System      string    `json:"system"`
	ModelFamily string    `json:"modelFamily"`
	Messages    []message `json:"messages"`
}

type result struct {
	Text  *string `json:"text,omitempty"`
	Error string  `json:"error,omitempty"`
}

// templateMessage has the fields of Ollama's templateMessage that a chat template reads.
type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     []string
	ToolCalls  []any
	ToolName   string
	ToolCallID string
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"currentDate": func(args ...string) string {
		return time.Now().Format("2006-01-02")
	},
	"yesterdayDate": func(args ...string) string {
		return time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	},
}

// usesMessages reports whether the template reads a field or variable named Messages, which is
// how Ollama (Template.Vars) chooses the .Messages path.
func usesMessages(t *template.Template) bool {
	found := false
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.TemplateNode:
			walk(n.Pipe)
		case *parse.IfNode:
			walk(&n.BranchNode)
		case *parse.RangeNode:
			walk(&n.BranchNode)
		case *parse.WithNode:
			walk(&n.BranchNode)
		case *parse.BranchNode:
			walk(n.Pipe)
			walk(n.List)
			if n.ElseList != nil {
				walk(n.ElseList)
			}
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				for _, a := range c.Args {
					walk(a)
				}
			}
		case *parse.FieldNode:
			for _, id := range n.Ident {
				if strings.EqualFold(id, "messages") {
					found = true
				}
			}
		case *parse.VariableNode:
			for _, id := range n.Ident {
				if strings.EqualFold(id, "messages") {
					found = true
				}
			}
		case *parse.ChainNode:
			walk(n.Node)
			for _, id := range n.Field {
				if strings.EqualFold(id, "messages") {
					found = true
				}
			}
		}
	}
	for _, tt := range t.Templates() {
		walk(tt.Root)
	}
	return found
}

// withoutThinking is an assistant message's content as Ollama's thinking parser leaves it when
// given the whole message at once: after leading whitespace, a <think> block (to its closing tag,
// or to the end when it has none) and the whitespace after it are taken out; content that is only
// whitespace or the start of "<think>" comes out empty (the parser waits for more); other content
// is kept as it is.
func withoutThinking(content string) string {
	const open, close = "<think>", "</think>"
	rest := strings.TrimLeftFunc(content, unicode.IsSpace)
	if !strings.HasPrefix(rest, open) {
		if strings.HasPrefix(open, rest) {
			return ""
		}
		return content
	}
	rest = rest[len(open):]
	end := strings.Index(rest, close)
	if end < 0 {
		return ""
	}
	return strings.TrimLeftFunc(rest[end+len(close):], unicode.IsSpace)
}

// filterThinkTags drops the thinking of assistant messages before the last user message, as
// Ollama does for qwen3 models.
func filterThinkTags(msgs []message, modelFamily string) []message {
	if modelFamily != "qwen3" {
		return msgs
	}
	lastUser := -1
	for i, m := range msgs {
		if m.Role == "user" {
			lastUser = i
		}
	}
	out := make([]message, len(msgs))
	copy(out, msgs)
	for i := range out {
		if out[i].Role == "assistant" && i < lastUser {
			out[i].Content = withoutThinking(out[i].Content)
		}
	}
	return out
}

// collate is Ollama's: all system messages joined, consecutive same-role messages merged.
func collate(msgs []message) (string, []*templateMessage) {
	var system []string
	var collated []*templateMessage
	for _, m := range msgs {
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		if len(collated) > 0 && collated[len(collated)-1].Role == m.Role && m.Role != "tool" {
			collated[len(collated)-1].Content += "\n\n" + m.Content
		} else {
			collated = append(collated, &templateMessage{Role: m.Role, Content: m.Content})
		}
	}
	return strings.Join(system, "\n\n"), collated
}

func render(c renderCase) (string, error) {
	t, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(c.Template)
	if err != nil {
		return "", err
	}
	if !usesMessages(t) {
		return "", fmt.Errorf("the template does not use .Messages; Ollama's legacy .Prompt/.Response path is not modelled here")
	}
	msgs := c.Messages
	if c.System != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
		msgs = append([]message{{Role: "system", Content: c.System}}, msgs...)
	}
	system, collated := collate(filterThinkTags(msgs, c.ModelFamily))
	var b bytes.Buffer
	err = t.Execute(&b, map[string]any{
		"System":     system,
		"Messages":   collated,
		"Tools":      nil,
		"Response":   "",
		"Think":      false,
		"ThinkLevel": "",
		"IsThinkSet": false,
	})
	return b.String(), err
}

func main() {
	var cases []renderCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintf(os.Stderr, "go-template: stdin is not a JSON array of {template, system, messages}: %v\n", err)
		os.Exit(2)
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		text, err := render(c)
		if err != nil {
			results[i].Error = err.Error()
		} else {
			results[i].Text = &text
		}
	}
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false)
	if err := out.Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "go-template: %v\n", err)
		os.Exit(1)
	}
}
