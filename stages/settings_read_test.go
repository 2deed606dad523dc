package stages_test

import (
	"go/ast"
	"go/token"
	"go/types"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/stages"
)

// A setting that is declared, documented and never read is a defect: every field of every
// kind's settings must be read by the code that builds or runs the kind. The test type-checks
// the module's non-test code and looks for a read of each field (a selector that is not the
// target of an assignment). Reads inside a kind's dry-run hooks (CheckModel, CheckRecipe,
// Workload) do not count: they check a setting, they do not honour it. A read inside a method
// of the settings type counts where that method is called.
func TestEverySettingIsRead(t *testing.T) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
		Dir:  testenv.ModuleRoot(t),
	}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		t.Fatal(err)
	}
	if packages.PrintErrors(pkgs) > 0 {
		t.Fatal("the module does not type-check")
	}

	// The settings structs of every kind, by their go/types name.
	settings := map[string]*stages.Kind{}
	for _, k := range stages.Kinds() {
		settings[k.Config.PkgPath()+"."+k.Config.Name()] = k
	}
	read := map[string]bool{}            // "pkg.Type.Field"
	methodReads := map[string][]string{} // "pkg.Type.Method" → fields it reads
	calledMethods := map[string]bool{}   // methods of settings types called in counted code
	fieldKey := func(sel *types.Selection) (string, bool) {
		recv := sel.Recv()
		if p, ok := recv.(*types.Pointer); ok {
			recv = p.Elem()
		}
		named, ok := recv.(*types.Named)
		if !ok || named.Obj().Pkg() == nil {
			return "", false
		}
		typ := named.Obj().Pkg().Path() + "." + named.Obj().Name()
		if settings[typ] == nil {
			return "", false
		}
		return typ + "." + sel.Obj().Name(), true
	}

	for _, p := range pkgs {
		for _, f := range p.Syntax {
			hooks := hookRanges(f, p.TypesInfo)
			writes := assignedSelectors(f)
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok || writes[sel] || inRanges(hooks, sel.Pos()) {
					return true
				}
				s := p.TypesInfo.Selections[sel]
				if s == nil {
					return true
				}
				key, ok := fieldKey(s)
				if !ok {
					return true
				}
				if s.Kind() == types.MethodVal || s.Kind() == types.MethodExpr {
					calledMethods[key] = true
				} else if fn := enclosingMethod(f, sel.Pos(), p.TypesInfo); settings[typeOf(fn)] != nil {
					methodReads[fn] = append(methodReads[fn], key)
				} else {
					read[key] = true
				}
				return true
			})
		}
	}
	for m := range calledMethods {
		for _, k := range methodReads[m] {
			read[k] = true
		}
	}

	checked := 0
	for typ, k := range settings {
		for _, f := range k.Fields {
			sf := k.Config.FieldByIndex(f.Index)
			checked++
			if !read[typ+"."+sf.Name] {
				t.Errorf("%s: setting %q (%s.%s) is declared but never read by the kind's implementation", k.Name, f.Name, k.Config.Name(), sf.Name)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d settings; the kinds' settings were not found", checked)
	}
}

// hookRanges are the source ranges of a kind's dry-run hooks in f: function literals given to
// a Def's CheckModel, CheckRecipe or Workload, and the bodies of functions named there.
func hookRanges(f *ast.File, info *types.Info) [][2]token.Pos {
	var out [][2]token.Pos
	named := map[types.Object]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		key, ok := kv.Key.(*ast.Ident)
		if !ok || !slices.Contains([]string{"CheckModel", "CheckRecipe", "Workload"}, key.Name) {
			return true
		}
		switch v := kv.Value.(type) {
		case *ast.FuncLit:
			out = append(out, [2]token.Pos{v.Pos(), v.End()})
		case *ast.Ident:
			if obj := info.Uses[v]; obj != nil {
				named[obj] = true
			}
		}
		return true
	})
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && named[info.Defs[fd.Name]] {
			out = append(out, [2]token.Pos{fd.Pos(), fd.End()})
		}
	}
	return out
}

// typeOf is the type part of "pkg.Type.Method".
func typeOf(method string) string {
	i := strings.LastIndexByte(method, '.')
	if i < 0 {
		return ""
	}
	return method[:i]
}

func inRanges(rs [][2]token.Pos, p token.Pos) bool {
	for _, r := range rs {
		if p >= r[0] && p < r[1] {
			return true
		}
	}
	return false
}

// assignedSelectors are the selectors that are only written: targets of = and :=.
func assignedSelectors(f *ast.File) map[*ast.SelectorExpr]bool {
	out := map[*ast.SelectorExpr]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && (as.Tok == token.ASSIGN || as.Tok == token.DEFINE) {
			for _, l := range as.Lhs {
				if sel, ok := l.(*ast.SelectorExpr); ok {
					out[sel] = true
				}
			}
		}
		return true
	})
	return out
}

// enclosingMethod names the settings-type method whose body holds pos ("pkg.Type.Method"),
// or "" when pos is not inside a method of a named type.
func enclosingMethod(f *ast.File, pos token.Pos, info *types.Info) string {
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv == nil || pos < fd.Pos() || pos >= fd.End() {
			continue
		}
		obj, _ := info.Defs[fd.Name].(*types.Func)
		if obj == nil {
			return ""
		}
		recv := obj.Type().(*types.Signature).Recv().Type()
		if p, ok := recv.(*types.Pointer); ok {
			recv = p.Elem()
		}
		if named, ok := recv.(*types.Named); ok && named.Obj().Pkg() != nil {
			return named.Obj().Pkg().Path() + "." + named.Obj().Name() + "." + fd.Name.Name
		}
	}
	return ""
}
