package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/tokenizer"
)

// maxStops is the most stop strings a request may give.
const maxStops = 16

// Handler is the HTTP API: GET /v1/models, POST /v1/chat/completions, POST /v1/completions,
// and GET /health (no key needed).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})
	mux.Handle("/v1/models", only("GET", s.authorized(s.listModels)))
	mux.Handle("/v1/models/{id...}", only("GET", s.authorized(s.getModel)))
	mux.Handle("/v1/chat/completions", only("POST", s.authorized(s.chatCompletions)))
	mux.Handle("/v1/completions", only("POST", s.authorized(s.completions)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("Unknown request URL: %s %s. This server answers GET /v1/models, POST /v1/chat/completions and POST /v1/completions.", r.Method, r.URL.Path)})
	})
	return s.recovering(mux)
}

// only answers other methods than method with a 405.
func only(method string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == "GET" && r.Method == "HEAD") {
			w.Header().Set("Allow", method)
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
				Message: fmt.Sprintf("%s %s is not supported: use %s.", r.Method, r.URL.Path, method)})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// recovering turns a panic in a handler into a 500 (when nothing was written yet) and a log
// line, so one bad request never takes the server down.
func (s *Server) recovering(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &recordingWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic in request", "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rw.wrote {
					writeError(rw, &apiError{status: http.StatusInternalServerError, Type: "server_error", Message: "internal error: " + fmt.Sprint(p)})
				}
			}
		}()
		h.ServeHTTP(rw, r)
	})
}

// recordingWriter notes whether the response has started.
type recordingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *recordingWriter) WriteHeader(code int) { w.wrote = true; w.ResponseWriter.WriteHeader(code) }
func (w *recordingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// authorized checks the bearer token when the server has a key, in constant time.
func (s *Server) authorized(h func(http.ResponseWriter, *http.Request)) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.APIKey))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.APIKey != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok {
				writeError(w, &apiError{status: http.StatusUnauthorized, Type: "invalid_request_error", Code: strp("invalid_api_key"),
					Message: "Incorrect or missing API key: send it as the header Authorization: Bearer KEY"})
				return
			}
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.Type == "" {
		e.Type = "invalid_request_error"
	}
	writeJSON(w, e.status, errorBody{Error: e})
}

func (s *Server) modelInfo(id string) modelInfo {
	return modelInfo{ID: id, Object: "model", Created: s.created, OwnedBy: "yai"}
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	list := modelList{Object: "list", Data: []modelInfo{}}
	for _, id := range s.ids {
		list.Data = append(list.Data, s.modelInfo(id))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.pick(id, ""); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.modelInfo(id))
}

// pick resolves the model and adapters fields to the adapters to use (nil: the base
// model). An empty model field means the base model.
func (s *Server) pick(modelID, adapterName string) (*lora.Adapters, *apiError) {
	notFound := func(param, name string) *apiError {
		return &apiError{status: http.StatusNotFound, Type: "invalid_request_error", Param: strp(param), Code: strp("model_not_found"),
			Message: fmt.Sprintf("The model %q does not exist on this server. It serves: %s.", name, strings.Join(s.ids, ", "))}
	}
	var chosen *lora.Adapters
	switch {
	case modelID == "" || modelID == s.cfg.ModelID:
	case s.adapters[modelID] != nil:
		chosen = s.adapters[modelID]
	default:
		return nil, notFound("model", modelID)
	}
	if adapterName != "" {
		a := s.adapters[adapterName]
		switch {
		case a == nil:
			return nil, notFound("adapters", adapterName)
		case chosen != nil && chosen != a:
			return nil, invalid("adapters", "", "model names the adapter %q and adapters names %q: name one", modelID, adapterName)
		}
		chosen = a
	}
	return chosen, nil
}

// decode reads the JSON body into v: unknown fields, wrong types, trailing data and bodies
// over the limit are errors the client can act on.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) *apiError {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return invalid("", "", "Content-Type must be application/json, got %q", ct)
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
			var mbe *http.MaxBytesError
			if errors.As(terr, &mbe) {
				err = terr
			}
		}
	}
	if err == nil {
		return nil
	}
	var (
		mbe    *http.MaxBytesError
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return &apiError{status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: strp("request_too_large"),
			Message: fmt.Sprintf("The request body is larger than this server's limit of %d bytes.", mbe.Limit)}
	case errors.As(err, &syntax):
		return invalid("", "", "We could not parse the JSON body of your request: %v (offset %d).", syntax, syntax.Offset)
	case errors.As(err, &typ):
		// Fields of the shared parameters are named through the embedded struct.
		field := strings.TrimPrefix(typ.Field, "params.")
		if field == "" {
			return invalid("", "", "The request body must be a JSON object, got a JSON %s.", typ.Value)
		}
		return invalid(field, "invalid_type", "Invalid type for '%s': expected %s, got a JSON %s.", field, jsonKind(typ.Type.String()), typ.Value)
	case errors.Is(err, io.EOF):
		return invalid("", "", "The request body is empty: send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "", "We could not parse the JSON body of your request: it ends too early.")
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return invalid(name, "unknown_parameter", "Unrecognized request argument supplied: %s", name)
	}
	// A field's own UnmarshalJSON (stop) failed.
	if strings.Contains(msg, "stopList") || strings.Contains(msg, "want a string or a list of strings") {
		return invalid("stop", "invalid_type", "Invalid type for 'stop': expected a string or a list of strings.")
	}
	return invalid("", "", "We could not parse the JSON body of your request: %v", err)
}

// jsonKind names a Go type as the JSON it reads.
func jsonKind(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "a boolean"
	case strings.Contains(goType, "string"):
		return "a string"
	case strings.HasPrefix(goType, "[]") || strings.HasPrefix(goType, "*[]"):
		return "an array"
	}
	return "an object"
}

// prepared is a request ready to generate.
type prepared struct {
	job
	model        string
	stream       bool
	includeUsage bool
}

// options checks the shared parameters and turns them into generation options.
func (s *Server) options(p *params) (prepared, *apiError) {
	var pr prepared
	a, e := s.pick(p.Model, p.Adapters)
	if e != nil {
		return pr, e
	}
	pr.adapter = a
	pr.model = p.Model
	if pr.model == "" {
		pr.model = s.cfg.ModelID
		if p.Adapters != "" {
			pr.model = p.Adapters
		}
	}
	pr.stream = p.Stream
	if p.StreamOptions != nil {
		if !p.Stream {
			return pr, invalid("stream_options", "", "stream_options is only allowed when stream is true.")
		}
		pr.includeUsage = p.StreamOptions.IncludeUsage
	}
	if p.N != nil && *p.N != 1 {
		return pr, invalid("n", "", "n must be 1: this server returns one choice per request.")
	}
	for name, v := range map[string]*float64{"frequency_penalty": p.FrequencyPenalty, "presence_penalty": p.PresencePenalty} {
		if v != nil && *v != 0 {
			return pr, invalid(name, "", "%s is not supported: send 0 or leave it out.", name)
		}
	}
	maxTokens := s.cfg.MaxTokens
	for _, m := range []struct {
		name string
		v    *int
	}{{"max_tokens", p.MaxTokens}, {"max_completion_tokens", p.MaxCompletionTokens}} {
		if m.v == nil {
			continue
		}
		if *m.v < 1 {
			return pr, invalid(m.name, "", "%s must be at least 1, got %d.", m.name, *m.v)
		}
		maxTokens = *m.v
	}
	var smp generate.Sampling
	if p.Temperature != nil {
		smp.Temp = *p.Temperature
	}
	if p.TopP != nil {
		smp.TopP = *p.TopP
	}
	if p.TopK != nil {
		smp.TopK = *p.TopK
	}
	if p.MinP != nil {
		smp.MinP = *p.MinP
	}
	switch {
	case smp.Temp < 0:
		return pr, invalid("temperature", "", "temperature must be at least 0, got %v.", smp.Temp)
	case smp.TopP < 0 || smp.TopP > 1:
		return pr, invalid("top_p", "", "top_p must be in [0, 1], got %v.", smp.TopP)
	case smp.MinP < 0 || smp.MinP > 1:
		return pr, invalid("min_p", "", "min_p must be in [0, 1], got %v.", smp.MinP)
	case smp.TopK < 0 || smp.TopK >= s.model.Config.VocabSize:
		return pr, invalid("top_k", "", "top_k must be in [0, %d), got %d.", s.model.Config.VocabSize, smp.TopK)
	}
	if smp.Temp == 0 {
		// Greedy: the filters change nothing (mlx_lm's sampler ignores them too).
		smp = generate.Sampling{}
	} else if p.Seed != nil {
		smp.Seed = uint64(*p.Seed)
	} else {
		smp.Seed = mrand.Uint64()
	}
	if len(p.Stop) > maxStops {
		return pr, invalid("stop", "", "stop takes at most %d strings, got %d.", maxStops, len(p.Stop))
	}
	for _, st := range p.Stop {
		if st == "" {
			return pr, invalid("stop", "", "stop strings must not be empty.")
		}
	}
	pr.stops = p.Stop
	pr.opts = generate.Options{MaxTokens: maxTokens, Sampling: smp, Stop: s.tok.EOS()}
	return pr, nil
}

// checkPrompt refuses prompts the model cannot take, with generate's own limits.
func (s *Server) checkPrompt(param string, ids []int32) *apiError {
	if len(ids) == 0 {
		return invalid(param, "", "The prompt is empty.")
	}
	if n := s.model.Config.MaxPositionEmbeddings; n > 0 && len(ids) > n {
		return invalid(param, "context_length_exceeded",
			"This model's maximum context length is %d tokens, but the prompt is %d tokens (max_position_embeddings in config.json). Shorten the prompt.", n, len(ids))
	}
	for i, id := range ids {
		if id < 0 || int(id) >= s.model.Config.VocabSize {
			return invalid(param, "", "Prompt token %d (position %d) is outside the model's vocabulary of %d.", id, i, s.model.Config.VocabSize)
		}
	}
	return nil
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if e := s.decode(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	pr, e := s.options(&req.params)
	if e == nil {
		e = s.chatPrompt(&req, &pr)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	s.respond(w, r, pr, true)
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if e := s.decode(w, r, &req); e != nil {
		writeError(w, e)
		return
	}
	pr, e := s.options(&req.params)
	if e == nil {
		e = s.completionPrompt(&req, &pr)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	s.respond(w, r, pr, false)
}

// chatPrompt renders the conversation through the chat template (with the tools), as
// mlx_lm.server does.
func (s *Server) chatPrompt(req *chatRequest, pr *prepared) *apiError {
	if req.Logprobs != nil && *req.Logprobs || req.TopLogprobs != nil && *req.TopLogprobs > 0 {
		param := "logprobs"
		if req.TopLogprobs != nil && *req.TopLogprobs > 0 {
			param = "top_logprobs"
		}
		return invalid(param, "unsupported_parameter", "logprobs are not supported by this server: leave out logprobs and top_logprobs.")
	}
	if len(req.Messages) == 0 {
		return invalid("messages", "", "messages must hold at least one message.")
	}
	tools := req.Tools
	if len(req.ToolChoice) > 0 {
		var choice string
		if json.Unmarshal(req.ToolChoice, &choice) != nil || (choice != "auto" && choice != "none") {
			return invalid("tool_choice", "unsupported_parameter", `tool_choice must be "auto" or "none": this server cannot force a tool call.`)
		}
		if choice == "none" {
			tools = nil
		}
	}
	msgs := make([]tokenizer.Message, 0, len(req.Messages))
	for i, m := range req.Messages {
		param := fmt.Sprintf("messages.[%d]", i)
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		case "":
			return invalid(param+".role", "", "Message %d has no role.", i)
		default:
			return invalid(param+".role", "", "Message %d has the role %q: want system, developer, user, assistant or tool.", i, m.Role)
		}
		content, err := messageText(m.Content)
		if err != nil {
			return invalid(param+".content", "", "Message %d: %v", i, err)
		}
		msg := tokenizer.Message{"role": m.Role, "content": content}
		if m.Name != "" {
			msg["name"] = m.Name
		}
		if len(m.ToolCalls) > 0 {
			msg["tool_calls"] = m.ToolCalls
		}
		if m.ToolCallID != "" {
			msg["tool_call_id"] = m.ToolCallID
		}
		msgs = append(msgs, msg)
	}
	if len(tools) == 0 {
		tools = nil
	}
	text, err := s.tok.ApplyChatTemplateVars(msgs, tools, true, req.ChatTemplateKwargs)
	if errors.Is(err, tokenizer.ErrNoChatTemplate) {
		return invalid("messages", "", "This model has no chat template: use /v1/completions with a prompt.")
	}
	if err != nil {
		return invalid("messages", "", "The chat template failed on these messages: %v", err)
	}
	pr.prompt = s.tok.Encode(text, false)
	return s.checkPrompt("messages", pr.prompt)
}

// messageText is a message's content: a string, null, or a list of text parts, joined.
func messageText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		return text, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("content must be a string or a list of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return "", fmt.Errorf("content part of type %q is not supported: only text parts", p.Type)
		}
		b.WriteString(*p.Text)
	}
	return b.String(), nil
}

// completionPrompt encodes the prompt as mlx_lm.server does (the tokenizer's special tokens,
// no chat template), or takes token ids as they are.
func (s *Server) completionPrompt(req *completionRequest, pr *prepared) *apiError {
	if req.Logprobs != nil {
		return invalid("logprobs", "unsupported_parameter", "logprobs are not supported by this server: leave logprobs out.")
	}
	if req.Echo {
		return invalid("echo", "unsupported_parameter", "echo is not supported by this server.")
	}
	var text string
	var ids []int32
	switch {
	case len(req.Prompt) == 0 || string(req.Prompt) == "null":
		return invalid("prompt", "", "prompt is required.")
	case json.Unmarshal(req.Prompt, &text) == nil:
		pr.prompt = s.tok.Encode(text, true)
	case json.Unmarshal(req.Prompt, &ids) == nil:
		pr.prompt = ids
	default:
		return invalid("prompt", "invalid_type", "prompt must be a string or a list of token ids (one prompt per request).")
	}
	return s.checkPrompt("prompt", pr.prompt)
}

func newID(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// respond generates for pr and writes the answer: one JSON object, or server-sent events
// when streaming.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, pr prepared, chat bool) {
	id, object := newID("cmpl-"), "text_completion"
	if chat {
		id, object = newID("chatcmpl-"), "chat.completion"
	}
	created := time.Now().Unix()
	rc := http.NewResponseController(w)
	start := time.Now()
	if !pr.stream {
		var text strings.Builder
		o, err := s.run(r.Context(), pr.job, func(t string) error { text.WriteString(t); return nil })
		if err != nil {
			s.failed(w, r, err, false)
			return
		}
		s.logDone(r, pr, o, start)
		u := &usage{PromptTokens: o.promptTokens, CompletionTokens: o.completionTokens, TotalTokens: o.promptTokens + o.completionTokens}
		finish := o.finish
		rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if chat {
			content := text.String()
			writeJSON(w, http.StatusOK, chatResponse{ID: id, Object: object, Created: created, Model: pr.model, SystemFingerprint: fingerprint,
				Choices: []chatChoice{{Message: &chatOut{Role: "assistant", Content: &content}, FinishReason: &finish}}, Usage: u})
		} else {
			writeJSON(w, http.StatusOK, completionResponse{ID: id, Object: object, Created: created, Model: pr.model, SystemFingerprint: fingerprint,
				Choices: []completionChoice{{Text: text.String(), FinishReason: &finish}}, Usage: u})
		}
		return
	}

	// Streaming: the headers go out when the generation's turn comes, so an error found
	// before (a closed server) is still a plain error response.
	started := false
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if !started {
			started = true
			h := w.Header()
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
		}
		rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	chunk := func(text string, finish *string) any {
		if chat {
			delta := &chatOut{}
			if finish == nil {
				delta.Content = &text
			}
			return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: pr.model, SystemFingerprint: fingerprint,
				Choices: []chatChoice{{Delta: delta, FinishReason: finish}}}
		}
		return completionResponse{ID: id, Object: object, Created: created, Model: pr.model, SystemFingerprint: fingerprint,
			Choices: []completionChoice{{Text: text, FinishReason: finish}}}
	}
	first := true
	o, err := s.run(r.Context(), pr.job, func(t string) error {
		if first && chat {
			// OpenAI's first chunk names the role.
			empty := ""
			if err := send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: pr.model, SystemFingerprint: fingerprint,
				Choices: []chatChoice{{Delta: &chatOut{Role: "assistant", Content: &empty}}}}); err != nil {
				return err
			}
		}
		first = false
		return send(chunk(t, nil))
	})
	if err != nil {
		s.failed(w, r, err, started)
		if started {
			s.sendError(send, err)
		}
		return
	}
	s.logDone(r, pr, o, start)
	if first && chat {
		empty := ""
		send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: pr.model, SystemFingerprint: fingerprint,
			Choices: []chatChoice{{Delta: &chatOut{Role: "assistant", Content: &empty}}}})
	}
	finish := o.finish
	if err := send(chunk("", &finish)); err != nil {
		return
	}
	if pr.includeUsage {
		u := &usage{PromptTokens: o.promptTokens, CompletionTokens: o.completionTokens, TotalTokens: o.promptTokens + o.completionTokens}
		if chat {
			send(chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: pr.model, SystemFingerprint: fingerprint, Choices: []chatChoice{}, Usage: u})
		} else {
			send(completionResponse{ID: id, Object: object, Created: created, Model: pr.model, SystemFingerprint: fingerprint, Choices: []completionChoice{}, Usage: u})
		}
	}
	rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	io.WriteString(w, "data: [DONE]\n\n")
	rc.Flush()
}

// fingerprint is the system_fingerprint of every response.
const fingerprint = "yai"

// failed logs a generation that ended in an error and, when the response has not started,
// answers with the error.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, err error, started bool) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || r.Context().Err() != nil {
		s.log.Info("request cancelled", "path", r.URL.Path, "reason", err)
		return
	}
	s.log.Error("generation failed", "path", r.URL.Path, "err", err)
	if !started {
		writeError(w, apiErrorOf(err))
	}
}

func apiErrorOf(err error) *apiError {
	if errors.Is(err, errClosed) {
		return &apiError{status: http.StatusServiceUnavailable, Type: "server_error", Message: "The server is shutting down."}
	}
	return &apiError{status: http.StatusInternalServerError, Type: "server_error", Message: "Generation failed: " + err.Error()}
}

// sendError ends a stream that has started with an error event, as OpenAI does.
func (s *Server) sendError(send func(any) error, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	send(errorBody{Error: apiErrorOf(err)})
}

func (s *Server) logDone(r *http.Request, pr prepared, o outcome, start time.Time) {
	s.log.Info("request done", "path", r.URL.Path, "model", pr.model, "stream", pr.stream,
		"prompt_tokens", o.promptTokens, "completion_tokens", o.completionTokens, "finish_reason", o.finish,
		"seconds", time.Since(start).Seconds())
}
