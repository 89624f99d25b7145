package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100
// on every Linux architecture Go supports (sysconf would need cgo).
const clockTicks = 100

// Usage is CPU time and resident memory of processes and their
// descendants (ejabberd's VM has helper children; Prosody and Parley are
// one process; a cluster is several nodes and NATS servers).
type Usage struct {
	CPU    float64 // seconds, user + system
	RSSKiB int64
	Procs  int
	OK     bool
}

// ProcUsage reads /proc for the given processes and every process below
// them, summed; a process below two of them, or given twice, counts once.
// OK is false when no pid is given or any of them is gone (a figure
// missing a node would look like a cheaper server).
func ProcUsage(pids ...int) Usage {
	total, _ := procUsageEach(pids, false)
	return total
}

// procUsageEach is ProcUsage of pids and, with each, of every pid alone
// (with its descendants), all from one reading of each process: the parts
// and the total are of the same moment, so for disjoint processes the
// parts add up to the total exactly (reading the total and then each part
// would let busy processes run on in between).
func procUsageEach(pids []int, each bool) (Usage, []Usage) {
	var total Usage
	if len(pids) == 0 {
		return total, nil
	}
	for _, pid := range pids {
		if _, ok := procStat(pid); !ok {
			return total, nil
		}
	}
	children := map[int][]int{}
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if st, ok := procStat(p); ok {
				children[st.ppid] = append(children[st.ppid], p)
			}
		}
	}
	type reading struct {
		cpu float64
		rss int64
		ok  bool
	}
	readings := map[int]reading{}
	read := func(p int) reading {
		if r, ok := readings[p]; ok {
			return r
		}
		var r reading
		if st, ok := procStat(p); ok {
			r = reading{cpu: st.cpu, rss: procRSS(p), ok: true}
		}
		readings[p] = r
		return r
	}
	tree := func(roots []int) Usage {
		var u Usage
		todo := append([]int(nil), roots...)
		seen := map[int]bool{}
		for len(todo) > 0 {
			p := todo[len(todo)-1]
			todo = todo[:len(todo)-1]
			if seen[p] {
				continue
			}
			seen[p] = true
			r := read(p)
			if !r.ok {
				continue
			}
			u.CPU += r.cpu
			u.RSSKiB += r.rss
			u.Procs++
			todo = append(todo, children[p]...)
		}
		u.OK = true
		return u
	}
	total = tree(pids)
	if !each {
		return total, nil
	}
	parts := make([]Usage, len(pids))
	for i, p := range pids {
		parts[i] = tree([]int{p})
	}
	return total, parts
}

// ParsePIDs reads a comma-separated list of process IDs; "" and 0 are
// none (0 was the single -pid flag's "not measured").
func ParsePIDs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("bad pid %q", f)
		}
		if p > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

type stat struct {
	ppid int
	cpu  float64
}

func procStat(pid int) (stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return stat{}, false
	}
	f := bytes.Fields(b[i+2:])
	// after the command: state(0) ppid(1) ... utime(11) stime(12)
	if len(f) < 13 {
		return stat{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	stt, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return stat{ppid: ppid, cpu: float64(ut+stt) / clockTicks}, true
}

func procRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	i := bytes.Index(b, []byte("VmRSS:"))
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+6:])
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return v
}
