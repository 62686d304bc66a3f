package galera

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// randomNode is one of the states a node can be in after a crash or a
// partition, drawn at random.
func randomNode(rng *rand.Rand, i int) Observed {
	name := fmt.Sprintf("n%d", i)
	seq := int64(rng.Intn(5)) + 40
	uuid := hist
	if rng.Intn(20) == 0 {
		uuid = other
	}
	view := func(o Observed) Observed {
		if rng.Intn(3) > 0 {
			return inView(o, members3[i%3], int64(rng.Intn(3)), members3[:]...)
		}
		return o
	}
	seenBy := func(o Observed) Observed {
		if rng.Intn(4) > 0 {
			o.Vantage = &Vantage{Reached: rng.Intn(4), Of: 3}
		}
		return o
	}
	switch rng.Intn(7) {
	case 0:
		return gone(name)
	case 1:
		return primary(name, 1+rng.Intn(3))
	case 2:
		o := nonPrim(name, seq)
		o.Wsrep.ClusterStateUUID = uuid
		return seenBy(view(o))
	case 3:
		o := crashed(name, seq)
		o.Recovered.UUID = uuid
		return seenBy(view(o))
	case 4:
		return with(crashed(name, -1), func(o *Observed) { o.Recovered, o.RecoverError = nil, "recover failed" })
	case 5:
		return with(nonPrim(name, seq), func(o *Observed) { o.Wsrep = nil })
	default:
		o := crashed(name, seq)
		o.Grastate.SafeToBootstrap = rng.Intn(2) == 0
		return seenBy(view(o))
	}
}

var members3 = [3]string{mX, mY, mZ}

// TestDecideNeverUnsafe checks Decide's safety rules on many random
// cluster states: whatever the mix, an automatic bootstrap happens only
// with no readable Primary, a majority of the configured nodes, the
// highest known position, and after the wait when a node is missing; and
// never while the node an earlier bootstrap made cannot be read.
func TestDecideNeverUnsafe(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	boots := 0
	for iter := 0; iter < 20000; iter++ {
		n := 1 + rng.Intn(5)
		in := DecideInput{PositionWait: 2 * time.Minute, Waited: time.Duration(rng.Intn(4)) * time.Minute}
		for i := 0; i < n; i++ {
			in.Nodes = append(in.Nodes, randomNode(rng, i))
		}
		if rng.Intn(4) == 0 {
			in.PriorBootstrap = in.Nodes[rng.Intn(n)].Name
		}
		d := Decide(in)
		if err := unsafe(in, d); err != nil {
			t.Fatalf("%v\ninput %+v\ndecision %+v", err, in, d)
		}
		if d.Action == ActBootstrap {
			boots++
		}
	}
	if boots < 100 {
		t.Errorf("only %d bootstraps in 20000 random states: the generator does not reach the rule", boots)
	}
}

func unsafe(in DecideInput, d Decision) error {
	answered, chosen := 0, -1
	for i, o := range in.Nodes {
		if o.Reachable && o.Running && o.Wsrep.Primary() && d.Action != ActNone {
			return fmt.Errorf("%s is Primary but the decision is %s", o.Name, d.Action)
		}
		if o.Reachable {
			answered++
		}
		if o.Name == d.Node {
			chosen = i
		}
		if o.Name == in.PriorBootstrap && !o.Reachable && d.Action == ActBootstrap {
			return fmt.Errorf("second bootstrap while %s, bootstrapped earlier, cannot be read", o.Name)
		}
	}
	if d.Action != ActBootstrap {
		return nil
	}
	if chosen < 0 || !in.Nodes[chosen].Reachable || !d.Position.Known() {
		return fmt.Errorf("bootstrap of %q: not a readable node at a known position", d.Node)
	}
	if answered*2 <= len(in.Nodes) {
		return fmt.Errorf("bootstrap with %d of %d nodes answering", answered, len(in.Nodes))
	}
	if answered < len(in.Nodes) && in.Waited < in.PositionWait {
		return fmt.Errorf("bootstrap before position_wait with a node missing")
	}
	if answered < len(in.Nodes) {
		if err := vantageAllows(in.Nodes); err != nil {
			return err
		}
	}
	for _, o := range in.Nodes {
		if !o.Reachable {
			continue
		}
		p, err := learned(o)
		if err != nil {
			return fmt.Errorf("bootstrap though %s's position is unknown: %v", o.Name, err)
		}
		if p.UUID != d.Position.UUID && !p.Undefined() {
			return fmt.Errorf("bootstrap though %s is on another history", o.Name)
		}
		if p.Seqno > d.Position.Seqno {
			return fmt.Errorf("bootstrap of %s at %d though %s is at %d", d.Node, d.Position.Seqno, o.Name, p.Seqno)
		}
	}
	return nil
}

// vantageAllows: with a node missing, some vantage point answered and none
// reaches more Galera ports than there are running readable nodes.
func vantageAllows(nodes []Observed) error {
	running, asked := 0, 0
	for _, o := range nodes {
		if o.Reachable && o.Running {
			running++
		}
	}
	for _, o := range nodes {
		if o.Reachable && o.Vantage != nil && o.Vantage.Error == "" {
			asked++
			if o.Vantage.Reached > running {
				return fmt.Errorf("bootstrap though %s reaches %d Galera ports and only %d readable nodes run", o.Name, o.Vantage.Reached, running)
			}
		}
	}
	if asked == 0 {
		return fmt.Errorf("bootstrap with a node missing and no vantage point asked")
	}
	return nil
}
