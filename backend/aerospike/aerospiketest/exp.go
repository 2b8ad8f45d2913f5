package aerospiketest

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"regexp"
	"time"
)

// Expression op codes.
const (
	expEQ           = 1
	expNE           = 2
	expGT           = 3
	expGE           = 4
	expLT           = 5
	expLE           = 6
	expRegex        = 7
	expGeo          = 8
	expAnd          = 16
	expOr           = 17
	expNot          = 18
	expExclusive    = 19
	expAdd          = 20
	expSub          = 21
	expMul          = 22
	expDiv          = 23
	expPow          = 24
	expLog          = 25
	expMod          = 26
	expAbs          = 27
	expFloor        = 28
	expCeil         = 29
	expToInt        = 30
	expToFloat      = 31
	expIntAnd       = 32
	expIntOr        = 33
	expIntXor       = 34
	expIntNot       = 35
	expIntLShift    = 36
	expIntRShift    = 37
	expIntARShift   = 38
	expIntCount     = 39
	expIntLScan     = 40
	expIntRScan     = 41
	expMin          = 50
	expMax          = 51
	expDigestModulo = 64
	expDeviceSize   = 65
	expLastUpdate   = 66
	expSinceUpdate  = 67
	expVoidTime     = 68
	expTTL          = 69
	expSetName      = 70
	expKeyExists    = 71
	expIsTombstone  = 72
	expMemorySize   = 73
	expRecordSize   = 74
	expKey          = 80
	expBin          = 81
	expBinType      = 82
	expCond         = 123
	expVar          = 124
	expLet          = 125
	expQuoted       = 126
	expCall         = 127
)

// Expression value types.
const (
	etNil    = 0
	etBool   = 1
	etInt    = 2
	etString = 3
	etList   = 4
	etMap    = 5
	etBlob   = 6
	etFloat  = 7
	etGeo    = 8
	etHLL    = 9
)

const expModifyFlag = 0x40

var (
	errExpression  = errors.New("aerospiketest: malformed expression")
	errUnsupported = errors.New("aerospiketest: unsupported expression")
)

// expNode is a parsed expression.
type expNode struct {
	op    int
	val   any // literal
	name  string
	typ   int64
	args  []*expNode
	names []string // LET variable names
	re    *regexp.Regexp
	// CALL
	cdtCode   int
	cdtCtx    []any
	modify    bool
	callFlags int64
}

// parseExpression parses a packed filter expression.
func parseExpression(b []byte) (*expNode, error) {
	r := &mpReader{b: b}
	n, err := parseExpNode(r)
	if err != nil {
		return nil, err
	}
	if !r.done() {
		return nil, errExpression
	}
	return n, nil
}

func isArrayByte(c byte) bool { return c&0xf0 == 0x90 || c == 0xdc || c == 0xdd }

func parseExpNode(r *mpReader) (*expNode, error) {
	c, ok := r.peek()
	if !ok {
		return nil, errExpression
	}
	if !isArrayByte(c) {
		v, err := r.value()
		if err != nil {
			return nil, errExpression
		}
		return &expNode{val: v}, nil
	}
	if err := r.enter(); err != nil {
		return nil, errExpression
	}
	defer func() { r.depth-- }()
	n, err := r.arrayHeader()
	if err != nil || n == 0 {
		return nil, errExpression
	}
	opv, err := r.value()
	if err != nil {
		return nil, errExpression
	}
	op, ok := opv.(int64)
	if !ok {
		return nil, errExpression
	}
	node := &expNode{op: int(op)}
	intArg := func() (int64, error) {
		v, err := r.value()
		if err != nil {
			return 0, errExpression
		}
		i, ok := v.(int64)
		if !ok {
			return 0, errExpression
		}
		return i, nil
	}
	switch node.op {
	case expQuoted:
		if n != 2 {
			return nil, errExpression
		}
		v, err := r.value()
		if err != nil {
			return nil, errExpression
		}
		return &expNode{val: v}, nil
	case expBin:
		if n != 3 {
			return nil, errExpression
		}
		if node.typ, err = intArg(); err != nil {
			return nil, err
		}
		if node.name, err = r.rawString(); err != nil {
			return nil, errExpression
		}
		return node, nil
	case expBinType, expVar:
		if n != 2 {
			return nil, errExpression
		}
		if node.name, err = r.rawString(); err != nil {
			return nil, errExpression
		}
		return node, nil
	case expKey, expDigestModulo:
		if n != 2 {
			return nil, errExpression
		}
		if node.typ, err = intArg(); err != nil {
			return nil, err
		}
		if node.op == expDigestModulo && node.typ <= 0 {
			return nil, errExpression
		}
		return node, nil
	case expRegex:
		if n != 4 {
			return nil, errExpression
		}
		flags, err := intArg()
		if err != nil {
			return nil, err
		}
		pat, err := r.rawString()
		if err != nil {
			return nil, errExpression
		}
		if flags&2 != 0 {
			pat = "(?i)" + pat
		}
		if node.re, err = regexp.Compile(pat); err != nil {
			return nil, errExpression
		}
		arg, err := parseExpNode(r)
		if err != nil {
			return nil, err
		}
		node.args = []*expNode{arg}
		return node, nil
	case expLet:
		if n < 2 || n%2 != 0 {
			return nil, errExpression
		}
		for range (n - 2) / 2 {
			name, err := r.rawString()
			if err != nil {
				return nil, errExpression
			}
			def, err := parseExpNode(r)
			if err != nil {
				return nil, err
			}
			node.names = append(node.names, name)
			node.args = append(node.args, def)
		}
		scope, err := parseExpNode(r)
		if err != nil {
			return nil, err
		}
		node.args = append(node.args, scope)
		return node, nil
	case expCall:
		if n != 5 {
			return nil, errExpression
		}
		if node.typ, err = intArg(); err != nil {
			return nil, err
		}
		if node.callFlags, err = intArg(); err != nil {
			return nil, err
		}
		if node.callFlags&^expModifyFlag != 0 {
			return nil, errUnsupported // bit and HLL modules
		}
		node.modify = node.callFlags&expModifyFlag != 0
		if err := parseCallArgs(r, node); err != nil {
			return nil, err
		}
		bin, err := parseExpNode(r)
		if err != nil {
			return nil, err
		}
		node.args = append(node.args, bin)
		return node, nil
	case expGeo:
		return nil, errUnsupported
	}
	if !knownExpOp(node.op) {
		return nil, errExpression
	}
	for range n - 1 {
		a, err := parseExpNode(r)
		if err != nil {
			return nil, err
		}
		node.args = append(node.args, a)
	}
	return node, checkArity(node)
}

// parseCallArgs parses [op, args...] or [0xff, [ctx...], [op, args...]].
func parseCallArgs(r *mpReader, node *expNode) error {
	m, err := r.arrayHeader()
	if err != nil || m == 0 {
		return errExpression
	}
	v, err := r.value()
	if err != nil {
		return errExpression
	}
	code, ok := v.(int64)
	if !ok {
		return errExpression
	}
	if code == cdtCtxMarker {
		if m != 3 {
			return errExpression
		}
		ctx, err := r.value()
		if err != nil {
			return errExpression
		}
		l, ok := ctx.(*listValue)
		if !ok || len(l.items)%2 != 0 {
			return errExpression
		}
		node.cdtCtx = l.items
		return parseCallArgs(r, node)
	}
	node.cdtCode = int(code)
	for range m - 1 {
		a, err := parseExpNode(r)
		if err != nil {
			return err
		}
		node.args = append(node.args, a)
	}
	return nil
}

func knownExpOp(op int) bool {
	switch {
	case op >= expEQ && op <= expLE, op >= expAnd && op <= expIntRScan,
		op == expMin, op == expMax, op >= expDeviceSize && op <= expRecordSize, op == expCond:
		return true
	}
	return false
}

func checkArity(n *expNode) error {
	want := -1
	switch {
	case n.op >= expEQ && n.op <= expLE, n.op == expPow, n.op == expLog, n.op == expMod,
		n.op >= expIntLShift && n.op <= expIntARShift, n.op == expIntLScan, n.op == expIntRScan:
		want = 2
	case n.op == expNot, n.op == expAbs, n.op == expFloor, n.op == expCeil, n.op == expToInt,
		n.op == expToFloat, n.op == expIntNot, n.op == expIntCount:
		want = 1
	case n.op >= expDeviceSize && n.op <= expRecordSize:
		want = 0
	case n.op == expCond:
		if len(n.args) < 3 || len(n.args)%2 == 0 {
			return errExpression
		}
	default:
		if len(n.args) == 0 {
			return errExpression
		}
	}
	if want >= 0 && len(n.args) != want {
		return errExpression
	}
	return nil
}

// expEnv is the record an expression is evaluated against.
type expEnv struct {
	rec     *record
	d       digest
	now     time.Time
	nowVoid uint32
	vars    []expBinding
}

type expBinding struct {
	name string
	val  any
	ok   bool
}

// matches evaluates a filter: only a known true passes.
func (n *expNode) matches(env *expEnv) bool {
	v, ok := n.eval(env)
	b, isBool := v.(bool)
	return ok && isBool && b
}

// eval returns the value of the expression; ok is false when the value is
// unknown (a missing bin, a type mismatch, a failed operation).
func (n *expNode) eval(env *expEnv) (any, bool) {
	switch n.op {
	case 0:
		return n.val, true
	case expEQ, expNE, expGT, expGE, expLT, expLE:
		a, ok1 := n.args[0].eval(env)
		b, ok2 := n.args[1].eval(env)
		if !ok1 || !ok2 || typeOrder(a) != typeOrder(b) {
			return nil, false
		}
		c := compare(a, b)
		switch n.op {
		case expEQ:
			return c == 0, true
		case expNE:
			return c != 0, true
		case expGT:
			return c > 0, true
		case expGE:
			return c >= 0, true
		case expLT:
			return c < 0, true
		}
		return c <= 0, true
	case expAnd, expOr:
		unknown := false
		for _, a := range n.args {
			v, ok := a.eval(env)
			b, isBool := v.(bool)
			if !ok || !isBool {
				unknown = true
				continue
			}
			if n.op == expAnd && !b {
				return false, true
			}
			if n.op == expOr && b {
				return true, true
			}
		}
		if unknown {
			return nil, false
		}
		return n.op == expAnd, true
	case expNot:
		v, ok := n.args[0].eval(env)
		b, isBool := v.(bool)
		if !ok || !isBool {
			return nil, false
		}
		return !b, true
	case expExclusive:
		count := 0
		for _, a := range n.args {
			v, ok := a.eval(env)
			b, isBool := v.(bool)
			if !ok || !isBool {
				return nil, false
			}
			if b {
				count++
			}
		}
		return count == 1, true
	case expRegex:
		v, ok := n.args[0].eval(env)
		s, isStr := v.(string)
		if !ok || !isStr {
			return nil, false
		}
		return n.re.MatchString(s), true
	case expDigestModulo:
		return int64(binary.LittleEndian.Uint32(env.d[16:]) % uint32(n.typ)), true
	case expDeviceSize, expRecordSize, expMemorySize:
		return int64(env.rec.size()), true
	case expLastUpdate:
		return env.rec.lut, true
	case expSinceUpdate:
		return (env.now.UnixNano() - env.rec.lut) / int64(time.Millisecond), true
	case expVoidTime:
		if env.rec.voidTime == 0 {
			return int64(-1), true
		}
		return (int64(env.rec.voidTime) + citrusleafEpochOffset) * int64(time.Second), true
	case expTTL:
		if env.rec.voidTime == 0 {
			return int64(-1), true
		}
		return int64(env.rec.voidTime) - int64(env.nowVoid), true
	case expSetName:
		return env.rec.set, true
	case expKeyExists:
		return env.rec.key != nil, true
	case expIsTombstone:
		return false, true
	case expKey:
		if len(env.rec.key) == 0 {
			return nil, false
		}
		v, rc := decodeParticle(env.rec.key[0], env.rec.key[1:])
		if rc != rcOK || !expTypeMatches(n.typ, v) {
			return nil, false
		}
		return v, true
	case expBin:
		v, ok := env.rec.bin(n.name)
		if !ok || !expTypeMatches(n.typ, v) {
			return nil, false
		}
		return v, true
	case expBinType:
		v, _ := env.rec.bin(n.name)
		return int64(particleType(v)), true
	case expCond:
		for i := 0; i+1 < len(n.args); i += 2 {
			v, ok := n.args[i].eval(env)
			b, isBool := v.(bool)
			if !ok || !isBool {
				return nil, false
			}
			if b {
				return n.args[i+1].eval(env)
			}
		}
		return n.args[len(n.args)-1].eval(env)
	case expVar:
		for i := len(env.vars) - 1; i >= 0; i-- {
			if env.vars[i].name == n.name {
				return env.vars[i].val, env.vars[i].ok
			}
		}
		return nil, false
	case expLet:
		depth := len(env.vars)
		for i, name := range n.names {
			v, ok := n.args[i].eval(env)
			env.vars = append(env.vars, expBinding{name: name, val: v, ok: ok})
		}
		v, ok := n.args[len(n.args)-1].eval(env)
		env.vars = env.vars[:depth]
		return v, ok
	case expCall:
		return n.evalCall(env)
	}
	return n.evalNumeric(env)
}

func (n *expNode) evalCall(env *expEnv) (any, bool) {
	binVal, ok := n.args[len(n.args)-1].eval(env)
	if !ok {
		return nil, false
	}
	if m, isMap := binVal.(*mapValue); isMap && n.cdtCode == mapGetByKey && !n.modify &&
		len(n.cdtCtx) == 0 && len(n.args) == 3 {
		// A map value by key, the usual guard of a map write: a binary
		// search, without the selection and result lists of the general
		// path below, which it matches.
		rt, ok1 := n.args[0].eval(env)
		k, ok2 := n.args[1].eval(env)
		if !ok1 || !ok2 {
			return nil, false
		}
		if rt, isInt := rt.(int64); isInt && rt == rtValue {
			i, found := m.find(k)
			if !found {
				return nil, false
			}
			v := m.entries[i].v
			return v, v != nil
		}
		return n.evalCallGeneric(binVal, []any{rt, k})
	}
	args := make([]any, 0, len(n.args)-1)
	for _, a := range n.args[:len(n.args)-1] {
		v, ok := a.eval(env)
		if !ok {
			return nil, false
		}
		args = append(args, v)
	}
	return n.evalCallGeneric(binVal, args)
}

// evalCallGeneric runs a CALL on binVal with evaluated arguments.
func (n *expNode) evalCallGeneric(binVal any, args []any) (any, bool) {
	o := cdtOp{code: n.cdtCode, args: args, ctx: n.cdtCtx}
	newVal, res, rc := cdtExec(binVal, binVal != nil, o, n.modify)
	if rc != rcOK {
		return nil, false
	}
	if n.modify {
		return newVal, true
	}
	return res, res != nil
}

func expTypeMatches(t int64, v any) bool {
	switch t {
	case etNil:
		return v == nil
	case etBool:
		_, ok := v.(bool)
		return ok
	case etInt:
		_, ok := v.(int64)
		return ok
	case etString:
		_, ok := v.(string)
		return ok
	case etList:
		_, ok := v.(*listValue)
		return ok
	case etMap:
		_, ok := v.(*mapValue)
		return ok
	case etBlob:
		_, ok := v.([]byte)
		return ok
	case etFloat:
		_, ok := v.(float64)
		return ok
	case etGeo:
		_, ok := v.(geoJSON)
		return ok
	case etHLL:
		_, ok := v.(hllValue)
		return ok
	}
	return false
}

// evalNumeric evaluates arithmetic and bitwise ops.
func (n *expNode) evalNumeric(env *expEnv) (any, bool) {
	vals := make([]any, len(n.args))
	for i, a := range n.args {
		v, ok := a.eval(env)
		if !ok {
			return nil, false
		}
		vals[i] = v
	}
	_, isInt := vals[0].(int64)
	_, isFloat := vals[0].(float64)
	if !isInt && !isFloat {
		return nil, false
	}
	switch n.op {
	case expToInt:
		if f, ok := vals[0].(float64); ok {
			if math.IsNaN(f) || f >= math.MaxInt64 || f < math.MinInt64 {
				return nil, false
			}
			return int64(f), true
		}
		return nil, false
	case expToFloat:
		if i, ok := vals[0].(int64); ok {
			return float64(i), true
		}
		return nil, false
	}
	for _, v := range vals[1:] {
		if typeOrder(v) != typeOrder(vals[0]) {
			return nil, false
		}
	}
	if isFloat {
		fs := make([]float64, len(vals))
		for i, v := range vals {
			fs[i] = v.(float64)
		}
		return floatOp(n.op, fs)
	}
	is := make([]int64, len(vals))
	for i, v := range vals {
		is[i] = v.(int64)
	}
	return intOp(n.op, is)
}

func floatOp(op int, fs []float64) (any, bool) {
	r := fs[0]
	switch op {
	case expAdd:
		for _, f := range fs[1:] {
			r += f
		}
	case expSub:
		if len(fs) == 1 {
			return -r, true
		}
		for _, f := range fs[1:] {
			r -= f
		}
	case expMul:
		for _, f := range fs[1:] {
			r *= f
		}
	case expDiv:
		if len(fs) == 1 {
			return 1 / r, true
		}
		for _, f := range fs[1:] {
			r /= f
		}
	case expPow:
		return math.Pow(fs[0], fs[1]), true
	case expLog:
		return math.Log(fs[0]) / math.Log(fs[1]), true
	case expAbs:
		return math.Abs(r), true
	case expFloor:
		return math.Floor(r), true
	case expCeil:
		return math.Ceil(r), true
	case expMin, expMax:
		for _, f := range fs[1:] {
			if (op == expMin && f < r) || (op == expMax && f > r) {
				r = f
			}
		}
	default:
		return nil, false
	}
	return r, true
}

func intOp(op int, is []int64) (any, bool) {
	r := is[0]
	switch op {
	case expAdd:
		for _, v := range is[1:] {
			r += v
		}
	case expSub:
		if len(is) == 1 {
			return -r, true
		}
		for _, v := range is[1:] {
			r -= v
		}
	case expMul:
		for _, v := range is[1:] {
			r *= v
		}
	case expDiv:
		if len(is) == 1 {
			if r == 0 {
				return nil, false
			}
			return 1 / r, true
		}
		for _, v := range is[1:] {
			if v == 0 {
				return nil, false
			}
			r /= v
		}
	case expMod:
		if is[1] == 0 {
			return nil, false
		}
		return is[0] % is[1], true
	case expAbs:
		if r < 0 {
			return -r, true
		}
	case expIntAnd:
		for _, v := range is[1:] {
			r &= v
		}
	case expIntOr:
		for _, v := range is[1:] {
			r |= v
		}
	case expIntXor:
		for _, v := range is[1:] {
			r ^= v
		}
	case expIntNot:
		return ^r, true
	case expIntLShift:
		return int64(uint64(r) << uint64(is[1]&63)), true
	case expIntRShift:
		return int64(uint64(r) >> uint64(is[1]&63)), true
	case expIntARShift:
		return r >> uint64(is[1]&63), true
	case expIntCount:
		return int64(bits.OnesCount64(uint64(r))), true
	case expIntLScan, expIntRScan:
		return intScan(op, r, is[1] != 0), true
	case expMin, expMax:
		for _, v := range is[1:] {
			if (op == expMin && v < r) || (op == expMax && v > r) {
				r = v
			}
		}
	default:
		return nil, false
	}
	return r, true
}

// intScan finds the first bit equal to search from the left (most
// significant, index 0) or the right; -1 when none.
func intScan(op int, v int64, search bool) int64 {
	u := uint64(v)
	if !search {
		u = ^u
	}
	if u == 0 {
		return -1
	}
	if op == expIntLScan {
		return int64(bits.LeadingZeros64(u))
	}
	return int64(63 - bits.TrailingZeros64(u))
}

// Expression operation flags.
const (
	expReadEvalNoFail    = 1 << 4
	expWriteCreateOnly   = 1 << 0
	expWriteUpdateOnly   = 1 << 1
	expWriteAllowDelete  = 1 << 2
	expWritePolicyNoFail = 1 << 3
	expWriteEvalNoFail   = 1 << 4
)

// decodeExpOp decodes an expression op value: [expression, flags].
func decodeExpOp(b []byte) (*expNode, int64, byte) {
	r := &mpReader{b: b}
	n, err := r.arrayHeader()
	if err != nil || n != 2 {
		return nil, 0, rcParameter
	}
	node, err := parseExpNode(r)
	if errors.Is(err, errUnsupported) {
		return nil, 0, rcUnsupported
	}
	if err != nil {
		return nil, 0, rcParameter
	}
	fv, err := r.value()
	flags, ok := fv.(int64)
	if err != nil || !ok || !r.done() {
		return nil, 0, rcParameter
	}
	return node, flags, rcOK
}

// evalExpOp runs an expression read op.
func evalExpOp(b []byte, env *expEnv, _ bool) (any, byte) {
	node, flags, rc := decodeExpOp(b)
	if rc != rcOK {
		return nil, rc
	}
	v, ok := node.eval(env)
	if !ok {
		if flags&expReadEvalNoFail != 0 {
			return nil, rcOK
		}
		return nil, rcOpNotApplicable
	}
	return v, rcOK
}

// expWrite runs an expression write op on r.
func expWrite(r *record, o op, env *expEnv) byte {
	node, flags, rc := decodeExpOp(o.value)
	if rc != rcOK {
		return rc
	}
	v, ok := node.eval(env)
	if !ok {
		if flags&expWriteEvalNoFail != 0 {
			return rcOK
		}
		return rcOpNotApplicable
	}
	_, exists := r.bin(o.name)
	fail := func(code byte) byte {
		if flags&expWritePolicyNoFail != 0 {
			return rcOK
		}
		return code
	}
	switch {
	case flags&expWriteCreateOnly != 0 && exists:
		return fail(rcBinExists)
	case flags&expWriteUpdateOnly != 0 && !exists:
		return fail(rcBinNotFound)
	case v == nil && flags&expWriteAllowDelete == 0:
		return fail(rcOpNotApplicable)
	}
	if l, ok := v.(*listValue); ok {
		v = deepCopy(l)
	} else if m, ok := v.(*mapValue); ok {
		v = deepCopy(m)
	}
	if !storable(v) {
		return rcParameter
	}
	r.setBin(o.name, v)
	return rcOK
}

// filterRC converts an expression parse error to a result code.
func filterRC(err error) byte {
	if errors.Is(err, errUnsupported) {
		return rcUnsupported
	}
	return rcParameter
}
