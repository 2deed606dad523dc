package recipe

import (
	"strings"

	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// lintGraph checks `after:` references and cycles.
func (l *linter) lintGraph(r *Recipe) {
	ids := map[string]bool{}
	var all []string
	for _, s := range r.Stages {
		if s.ID != "" && !ids[s.ID] {
			ids[s.ID] = true
			all = append(all, s.ID)
		}
	}
	for _, s := range r.Stages {
		afterNode := valueOf(s.Node, "after")
		for i, dep := range s.After {
			var at = afterNode
			if afterNode != nil && i < len(afterNode.Content) {
				at = afterNode.Content[i]
			}
			switch {
			case dep == s.ID:
				l.errorf(at, "stage %q cannot run after itself", s.ID)
			case !ids[dep]:
				l.errorf(at, "stage %q runs after unknown stage %q%s", s.ID, dep, stages.DidYouMean(dep, all))
			}
		}
	}
	if cycle := findCycle(r); cycle != nil {
		first := r.Stage(cycle[0])
		l.errorf(valueOf(first.Node, "after"), "dependency cycle: %s", strings.Join(cycle, " -> "))
	}
}

// findCycle returns one cycle of ids (first id repeated at the end), or nil.
func findCycle(r *Recipe) []string {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	byID := stageIndexByID(r)
	var stack []string
	var visit func(id string) []string
	visit = func(id string) []string {
		switch state[id] {
		case active:
			for i, s := range stack {
				if s == id {
					return append(append([]string{}, stack[i:]...), id)
				}
			}
		case done:
			return nil
		}
		state[id] = active
		stack = append(stack, id)
		if s := byID[id]; s != nil {
			for _, dep := range s.After {
				if dep == id {
					continue // reported on its own
				}
				if c := visit(dep); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[id] = done
		return nil
	}
	for _, s := range r.Stages {
		if c := visit(s.ID); c != nil {
			return c
		}
	}
	return nil
}

// stageIndexByID maps each id to its first stage, so graph passes stay linear in the recipe.
func stageIndexByID(r *Recipe) map[string]*StageDecl {
	out := make(map[string]*StageDecl, len(r.Stages))
	for i := range r.Stages {
		if _, dup := out[r.Stages[i].ID]; !dup {
			out[r.Stages[i].ID] = &r.Stages[i]
		}
	}
	return out
}

// Order returns the stages in dependency order, keeping recipe order where `after:` leaves a
// choice. The recipe must be free of cycles.
func Order(r *Recipe) []*StageDecl {
	placed := map[string]bool{}
	byID := stageIndexByID(r)
	var out []*StageDecl
	var place func(s *StageDecl)
	place = func(s *StageDecl) {
		if placed[s.ID] {
			return
		}
		placed[s.ID] = true
		for _, dep := range s.After {
			if d := byID[dep]; d != nil {
				place(d)
			}
		}
		out = append(out, s)
	}
	for i := range r.Stages {
		place(&r.Stages[i])
	}
	return out
}

// ByEvent groups ordered stages by the event they listen to.
func ByEvent(ordered []*StageDecl) map[stage.Event][]*StageDecl {
	out := map[stage.Event][]*StageDecl{}
	for _, s := range ordered {
		out[s.Event] = append(out[s.Event], s)
	}
	return out
}
