package aerospiketest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// replicasValue answers "replicas": every namespace owns all 4096
// partitions, one replica, AP regime.
func replicasValue(names []string) string {
	bitmap := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, partitionCount/8))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ":0,1," + bitmap
	}
	return strings.Join(parts, ";")
}

// handleInfo answers an info request: one "name\tvalue\n" line per command.
func (s *Server) handleInfo(body string) []byte {
	var out strings.Builder
	for _, cmd := range splitInfo(body) {
		out.WriteString(cmd)
		out.WriteByte('\t')
		out.WriteString(s.infoValue(cmd))
		out.WriteByte('\n')
	}
	return []byte(out.String())
}

// splitInfo returns the commands of an info request; an empty request asks
// for a default set.
func splitInfo(body string) []string {
	var cmds []string
	for _, c := range strings.Split(body, "\n") {
		if c != "" {
			cmds = append(cmds, c)
		}
	}
	if len(cmds) == 0 {
		cmds = []string{"build", "edition", "node", "namespaces", "version"}
	}
	return cmds
}

func (s *Server) infoValue(cmd string) string {
	name, params, _ := strings.Cut(cmd, ":")
	service := s.Addr()
	switch name {
	case "build":
		return s.cfg.build
	case "version":
		return "Aerospike Community Edition build " + s.cfg.build
	case "edition":
		return "Aerospike Community Edition"
	case "node":
		return s.cfg.nodeName
	case "partition-generation", "peers-generation", "rebalance-generation":
		return "1"
	case "cluster-stable":
		return s.cfg.nodeName
	case "cluster-name":
		return "null"
	case "peers-clear-std", "peers-clear-alt", "peers-tls-std", "peers-tls-alt", "alumni-clear-std":
		return fmt.Sprintf("1,%d,[]", s.Port())
	case "service", "services", "service-clear-std", "service-clear-alt":
		if name == "services" {
			return ""
		}
		return service
	case "replicas", "replicas-all", "replicas-master":
		return s.replicas
	case "partitions":
		return s.replicas
	case "user-agent-set":
		return "ok"
	case "features":
		return "batch-any;batch-index;blob-bits;cdt-list;cdt-map;cluster-stable;float;pquery;pscans;peers;query-show;replicas;replicas-all;replicas-master;sindex-exists;truncate-namespace"
	case "namespaces":
		return strings.Join(s.nsOrder, ";")
	case "statistics":
		return fmt.Sprintf("cluster_size=1;objects=%d;client_connections=%d", s.totalObjects(), s.openConns())
	case "sets":
		return s.infoSets("")
	case "set-config":
		return s.infoSetConfig(params)
	case "sindex-create":
		return s.infoSindexCreate(params)
	case "sindex-delete":
		return s.infoSindexDelete(params)
	case "sindex-exists":
		return s.infoSindexExists(params)
	case "sindex-list":
		return s.infoSindexList(params)
	case "sindex-stat":
		p := parseInfoParams(params)
		return s.infoSindexStat(first(p, "namespace", "ns"), first(p, "indexname"))
	case "truncate", "truncate-namespace":
		return s.infoTruncate(name, params)
	}
	if rest, ok := strings.CutPrefix(cmd, "namespace/"); ok {
		n, ok := s.namespaces[rest]
		if !ok {
			return "type=unknown"
		}
		return fmt.Sprintf("ns_cluster_size=1;effective_replication_factor=1;objects=%d;allow-ttl-without-nsup=%t;default-ttl=%d;max-record-size=%d;nsup-period=%d;replication-factor=1;strong-consistency=false;storage-engine=memory",
			n.count(s.nowVoid()), n.allowTTL.Load(), int64(n.cfg.DefaultTTL/time.Second), n.maxRecordSize.Load(), n.nsupPeriod.Load())
	}
	if rest, ok := strings.CutPrefix(cmd, "sets/"); ok {
		return s.infoSets(rest)
	}
	if rest, ok := strings.CutPrefix(cmd, "sindex/"); ok {
		ns, idx, _ := strings.Cut(rest, "/")
		return s.infoSindexStat(ns, idx)
	}
	return "ERROR::unrecognized command"
}

func (s *Server) totalObjects() int {
	n := 0
	now := s.nowVoid()
	for _, ns := range s.namespaces {
		n += ns.count(now)
	}
	return n
}

func (s *Server) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func parseInfoParams(params string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// first returns the first non-empty parameter among names.
func first(p map[string]string, names ...string) string {
	for _, n := range names {
		if v := p[n]; v != "" {
			return v
		}
	}
	return ""
}

func (s *Server) infoSindexCreate(params string) string {
	p := parseInfoParams(params)
	nsName := first(p, "namespace", "ns")
	ns, ok := s.namespaces[nsName]
	if !ok {
		return "FAIL:20:namespace not found"
	}
	idx := &sindex{ns: nsName, set: p["set"], name: p["indexname"], coll: strings.ToUpper(first(p, "indextype"))}
	if data := p["indexdata"]; data != "" {
		bin, typ, ok := strings.Cut(data, ",")
		if !ok {
			return "FAIL:4:bad indexdata"
		}
		idx.bin, idx.typ = bin, strings.ToUpper(typ)
	} else {
		idx.bin, idx.typ = p["bin"], strings.ToUpper(p["type"])
	}
	if idx.coll == "" {
		idx.coll = "DEFAULT"
	}
	if ctx := p["context"]; ctx != "" {
		b, err := base64.StdEncoding.DecodeString(ctx)
		if err != nil {
			return "FAIL:4:bad context"
		}
		idx.ctx = b
	}
	if exp := p["exp"]; exp != "" {
		b, err := base64.StdEncoding.DecodeString(exp)
		if err != nil {
			return "FAIL:4:bad exp"
		}
		if _, err := parseExpression(b); err != nil {
			return "FAIL:4:bad exp"
		}
		idx.exp = b
	}
	if idx.name == "" || len(idx.name) >= 64 || (idx.bin == "" && idx.exp == nil) || len(idx.bin) > maxBinName {
		return "FAIL:4:bad parameters"
	}
	switch idx.typ {
	case "NUMERIC", "STRING", "BLOB", "GEO2DSPHERE":
	default:
		return "FAIL:4:bad index type"
	}
	switch idx.coll {
	case "DEFAULT", "LIST", "MAPKEYS", "MAPVALUES":
	default:
		return "FAIL:4:bad index collection type"
	}
	switch ns.createIndex(idx) {
	case indexDifferent:
		if s.newInfoSyntax() {
			return "ERROR:200:'indexname' already exists with different definition"
		}
		return "FAIL:200:index with the same name already exists"
	}
	return "ok"
}

// newInfoSyntax reports whether the server answers as Aerospike 8.1 and
// later do.
func (s *Server) newInfoSyntax() bool {
	return s.cfg.build >= "8.1"
}

func (s *Server) infoSindexDelete(params string) string {
	p := parseInfoParams(params)
	ns, ok := s.namespaces[first(p, "namespace", "ns")]
	if !ok {
		return "FAIL:20:namespace not found"
	}
	if !ns.dropIndex(p["indexname"]) && !s.newInfoSyntax() {
		return "FAIL:201:index does not exist"
	}
	return "ok"
}

func (s *Server) infoSindexExists(params string) string {
	p := parseInfoParams(params)
	ns, ok := s.namespaces[first(p, "namespace", "ns")]
	if !ok {
		return "FAIL:20:namespace not found"
	}
	if ns.index(p["indexname"]) != nil {
		return "true"
	}
	return "false"
}

func (s *Server) infoSindexStat(nsName, name string) string {
	ns, ok := s.namespaces[nsName]
	if !ok {
		return "FAIL:20:namespace not found"
	}
	if ns.index(name) == nil {
		return "FAIL:201:index does not exist"
	}
	return "keys=0;entries=0;load_pct=100;loadtime=0"
}

func (s *Server) infoSindexList(params string) string {
	p := parseInfoParams(params)
	want := first(p, "namespace", "ns")
	var lines []string
	for _, nsName := range s.nsOrder {
		if want != "" && want != nsName {
			continue
		}
		for _, idx := range s.namespaces[nsName].indexes() {
			set := idx.set
			if set == "" {
				set = "NULL"
			}
			ctx, exp := "NULL", "NULL"
			if idx.ctx != nil {
				ctx = base64.StdEncoding.EncodeToString(idx.ctx)
			}
			if idx.exp != nil {
				exp = base64.StdEncoding.EncodeToString(idx.exp)
			}
			lines = append(lines, fmt.Sprintf("ns=%s:indexname=%s:set=%s:bin=%s:type=%s:indextype=%s:context=%s:exp=%s:state=RW",
				idx.ns, idx.name, set, idx.bin, strings.ToLower(idx.typ), strings.ToLower(idx.coll), ctx, exp))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, ";")
}

func (s *Server) infoTruncate(name, params string) string {
	p := parseInfoParams(params)
	set := p["set"]
	if name == "truncate" && set == "" {
		return "ERROR:4:missing 'set'"
	}
	ns, ok := s.namespaces[p["namespace"]]
	if !ok {
		// A real server answers ok for a namespace it does not have.
		return "ok"
	}
	// Truncation times have millisecond resolution: records updated
	// before the cutoff's millisecond go.
	now := s.Now().UnixMilli()
	cutoff := now
	if lut := p["lut"]; lut != "" {
		v, err := strconv.ParseInt(lut, 10, 64)
		if err != nil || v <= 0 {
			return "ERROR:4:would truncate to 0"
		}
		if v/int64(time.Millisecond) > now {
			return "ERROR:4:would truncate in the future"
		}
		cutoff = v / int64(time.Millisecond)
	}
	ns.truncate(set, name == "truncate", cutoff*int64(time.Millisecond))
	return "ok"
}

// infoSets answers "sets", "sets/<ns>" and "sets/<ns>/<set>": for every
// set name a namespace holds, its live record count.
func (s *Server) infoSets(arg string) string {
	nsName, set, one := strings.Cut(arg, "/")
	if nsName != "" {
		if _, ok := s.namespaces[nsName]; !ok {
			return "ns_type=unknown"
		}
	}
	var out strings.Builder
	now := s.nowVoid()
	for _, name := range s.nsOrder {
		if nsName != "" && name != nsName {
			continue
		}
		ns := s.namespaces[name]
		if one {
			if !ns.hasSet(set) {
				return ""
			}
			return fmt.Sprintf("objects=%d:tombstones=0:truncating=false;", ns.setObjects(now)[set])
		}
		objects := ns.setObjects(now)
		for _, set := range ns.sets() {
			fmt.Fprintf(&out, "ns=%s:set=%s:objects=%d:tombstones=0:truncating=false;", name, set, objects[set])
		}
	}
	return out.String()
}

// infoSetConfig answers "set-config" for the namespace settings this server
// changes at run time: max-record-size, nsup-period and
// allow-ttl-without-nsup.
func (s *Server) infoSetConfig(params string) string {
	p := parseInfoParams(params)
	if p["context"] != "namespace" {
		return "ERROR::unsupported context"
	}
	ns, ok := s.namespaces[p["id"]]
	if !ok {
		return "ERROR::namespace not found"
	}
	if len(p) != 3 {
		return "ERROR::expected one parameter"
	}
	switch {
	case p["max-record-size"] != "":
		v, err := strconv.ParseInt(p["max-record-size"], 10, 64)
		if err != nil || v <= 0 || v > MaxMaxRecordSize {
			return "ERROR::bad max-record-size"
		}
		ns.maxRecordSize.Store(v)
	case p["nsup-period"] != "":
		v, err := strconv.ParseInt(p["nsup-period"], 10, 32)
		if err != nil || v < 0 {
			return "ERROR::bad nsup-period"
		}
		ns.nsupPeriod.Store(v)
	case p["allow-ttl-without-nsup"] != "":
		v, err := strconv.ParseBool(p["allow-ttl-without-nsup"])
		if err != nil {
			return "ERROR::bad allow-ttl-without-nsup"
		}
		ns.allowTTL.Store(v)
	default:
		return "ERROR::unsupported parameter"
	}
	return "ok"
}
