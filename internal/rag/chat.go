package rag

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/ragops/ragops/internal/llm"
)

// Conversation is a chat to answer with retrieval: the messages as the client
// sent them (the last one from the user), retrieval settings and options for
// the chat model.
type Conversation struct {
	Messages []llm.Message
	TopK     int
	Filter   map[string]string
	Mode     string // retrieval mode; empty: the service's default
	Options  llm.ChatOptions
}

// ChatAnswer is the answer to a conversation.
type ChatAnswer struct {
	Answer
	// Question is what retrieval ran on: the last user message, or with
	// earlier turns and a chat model, the standalone question it condensed.
	Question string
	// FinishReason is the model's ("stop", "length", ...); "stop" for
	// extractive answers.
	FinishReason string
}

const condenseSystemPrompt = `Rewrite the user's last message as one standalone question that can be understood without the conversation before it.
Keep names, numbers and the language of the message. Reply with the question only.`

// Chat answers the last user message of a conversation from retrieved
// passages. Retrieval runs on the last user message; when earlier turns exist
// and a chat model is configured, the model first condenses the conversation
// into a standalone question (extractive mode uses the last message alone).
// The answer prompt is the one Answer uses, preceded by the client's system
// messages and earlier turns. With onToken non-nil the answer is passed on
// piece by piece.
func (s *Service) Chat(ctx context.Context, c Conversation, onToken func(string) error) (ChatAnswer, error) {
	last := -1
	for i, m := range c.Messages {
		if m.Role == "user" {
			last = i
		}
	}
	if last < 0 || last != len(c.Messages)-1 {
		return ChatAnswer{}, fmt.Errorf("the conversation must end with a user message")
	}
	a := ChatAnswer{Question: c.Messages[last].Content, FinishReason: "stop"}
	var system, history []llm.Message
	for _, m := range c.Messages[:last] {
		if m.Role == "system" {
			system = append(system, m)
		} else {
			history = append(history, m)
		}
	}
	chat := s.chat
	var condenseUsage llm.Usage
	if chat != nil {
		// Only the user's identity goes with the condensing call: sampling
		// settings and limits are meant for the answer.
		condenser, err := llm.WithOptions(chat, llm.ChatOptions{User: c.Options.User, SafetyIdentifier: c.Options.SafetyIdentifier})
		if err != nil {
			condenser = chat
		}
		opts := c.Options
		opts.OnFinish = func(r string) {
			a.FinishReason = r
			if c.Options.OnFinish != nil {
				c.Options.OnFinish(r)
			}
		}
		if chat, err = llm.WithOptions(chat, opts); err != nil {
			return a, err
		}
		if len(history) > 0 {
			q, u, err := condenser.Complete(ctx, condensePrompt(history, a.Question))
			if err != nil {
				return a, modelErr(ctx, "chat model", err)
			}
			condenseUsage = u
			if q = strings.TrimSpace(q); q != "" {
				a.Question = q
			}
		}
	}
	sources, usage, err := s.Retrieve(ctx, Query{Question: a.Question, TopK: c.TopK, Filter: c.Filter, Mode: c.Mode})
	if err != nil {
		return a, err
	}
	a.Answer = Answer{Sources: sources, Model: s.ChatModel(), Mode: s.Mode(), Usage: usage}
	a.addUsage(condenseUsage)
	s.opts.Metrics.Tokens("prompt", condenseUsage.PromptTokens)
	s.opts.Metrics.Tokens("completion", condenseUsage.CompletionTokens)
	if len(sources) == 0 || chat == nil {
		a.Answer.Answer = NoContextAnswer
		if len(sources) > 0 {
			a.Answer.Answer = Extract(a.Question, sources)
		}
		if onToken != nil {
			for _, w := range splitKeep(a.Answer.Answer) {
				if err := onToken(w); err != nil {
					return a, err
				}
			}
		}
		return a, nil
	}
	p := Prompt(a.Question, sources)
	msgs := make([]llm.Message, 0, len(system)+len(history)+2)
	msgs = append(msgs, p[0])
	msgs = append(msgs, system...)
	msgs = append(msgs, history...)
	msgs = append(msgs, p[1])
	var cu llm.Usage
	gctx, gspan := startSpan(ctx, "rag.generate", attribute.String(AttrModel, chat.Model()),
		attribute.Int(AttrPassages, len(sources)), attribute.Bool(AttrStream, onToken != nil))
	if onToken == nil {
		a.Answer.Answer, cu, err = chat.Complete(gctx, msgs)
	} else {
		var b strings.Builder
		cu, err = chat.Stream(gctx, msgs, func(tok string) error {
			b.WriteString(tok)
			return onToken(tok)
		})
		a.Answer.Answer = b.String()
	}
	endSpan(gspan, modelErr(ctx, "chat model", err))
	if err != nil {
		return a, modelErr(ctx, "chat model", err)
	}
	s.opts.Metrics.Tokens("prompt", cu.PromptTokens)
	s.opts.Metrics.Tokens("completion", cu.CompletionTokens)
	a.addUsage(cu)
	return a, nil
}

func (a *ChatAnswer) addUsage(u llm.Usage) {
	a.Usage.PromptTokens += u.PromptTokens
	a.Usage.CompletionTokens += u.CompletionTokens
	a.Usage.TotalTokens += u.TotalTokens
}

// condensePrompt asks for a standalone question. The follow-up comes last,
// after "Question:", as in the answer prompt.
func condensePrompt(history []llm.Message, followUp string) []llm.Message {
	var b strings.Builder
	b.WriteString("Conversation:\n")
	for _, m := range history {
		fmt.Fprintf(&b, "%s: %s\n", m.Role, strings.Join(strings.Fields(m.Content), " "))
	}
	b.WriteString("\nRewrite as a standalone question.\nQuestion: ")
	b.WriteString(strings.Join(strings.Fields(followUp), " "))
	return []llm.Message{{Role: "system", Content: condenseSystemPrompt}, {Role: "user", Content: b.String()}}
}
