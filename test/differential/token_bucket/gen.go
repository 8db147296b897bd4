// Generates token-bucket scenarios and the answers of Go's golang.org/x/time/rate.Limiter (the
// reference that resilience/token_bucket.h promises to follow), for token_bucket_replay to
// replay against resilience::TokenBucket. Run through scripts/differential.sh.
//
// Output, one line per record (times are ns after the scenario's start):
//
//	scenario <id> <rate> <burst>
//	allow <t> <n> <ok> <tokens_after>
//	reserve <t> <n> <max_wait|inf> <ok> <delay_ns> <tokens_after>
//	cancel <t> <reservation_index> <tokens_after>
//	setrate <t> <rate> <tokens_after>
//	setburst <t> <burst> <tokens_after>
//	end
//
// Reservation indexes count the reserve records of the scenario from 0, ok or not.
//
// The scenarios stay away from the cases resilience/token_bucket.h lists as deliberate
// differences (time running backwards, rate 0 after a change, unlimited-to-finite at the same
// instant) and from ties: a decision whose answer would flip if either side's rounding (Go's
// float64 tokens and truncated durations, sluice's fixed point rounded toward fewer tokens) moved
// the boundary by a few nanoseconds is nudged off the boundary first. Those rules are the whole
// of what the generator knows about sluice.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

var (
	exactRates = []float64{1, 2, 4, 5, 10, 100, 1000, 1e6}
	oddRates   = []float64{3, 7, 0.3, 1e-3, 13.7, 333.3, 12345.6, 2.5e7}
)

// booking is a reservation and what Go's CancelAt reads from it.
type booking struct {
	res   *rate.Reservation
	at    time.Time
	n     int
	limit float64
}

type gen struct {
	rng *rand.Rand
	out *bufio.Writer
}

func (g *gen) pickRate() float64 {
	if g.rng.Intn(2) == 0 {
		return exactRates[g.rng.Intn(len(exactRates))]
	}
	return oddRates[g.rng.Intn(len(oddRates))]
}

func (g *gen) pickBurst() int {
	switch g.rng.Intn(10) {
	case 0:
		return 1
	case 1:
		return []int{100, 1000, 1000000}[g.rng.Intn(3)]
	default:
		return 1 + g.rng.Intn(20)
	}
}

func (g *gen) pickN(burst int) int {
	switch g.rng.Intn(10) {
	case 0:
		return 0
	case 1:
		return burst + 1 // never possible at a finite rate
	case 2:
		return burst
	default:
		return 1 + g.rng.Intn(min(burst, 5))
	}
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func fmtFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "inf"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

// scenario plays one random scenario against a fresh Go limiter and prints it.
func (g *gen) scenario(id int) {
	r := g.pickRate()
	special := g.rng.Intn(20)
	if special == 0 {
		r = 0
	} else if special == 1 {
		r = math.Inf(1)
	}
	burst := g.pickBurst()
	t0 := time.Unix(1_000_000_000, 0)
	// NewLimiter starts empty at the zero time and fills by elapsed*rate, which at tiny rates is
	// not full by 2001; sluice starts full. Going through Inf fills Go's bucket at t0 exactly.
	lim := rate.NewLimiter(rate.Inf, burst)
	if !math.IsInf(r, 1) {
		lim.SetLimitAt(t0, limitOf(r))
	}
	fmt.Fprintf(g.out, "scenario %d %s %d\n", id, fmtFloat(r), burst)

	var now time.Duration
	curRate := r
	curBurst := burst
	// Go's lastEvent (the latest booking's time to act), tracked here by Go's own rules. Where
	// it is in the past when a cancel reads it, sluice counts from the cancel's time instead
	// (token_bucket.h lists this deliberate difference): the scenario first makes Go's lastEvent
	// `now` with an n = 0 take, which sluice ignores, or skips the cancel if Go refuses that.
	lastEvent := t0
	var bookings []booking
	ops := 20 + g.rng.Intn(40)
	for i := 0; i < ops; i++ {
		// Advance time: often not at all, else by a fraction of a few token intervals.
		if g.rng.Intn(3) != 0 && curRate > 0 && !math.IsInf(curRate, 1) {
			interval := float64(time.Second) / curRate
			now += time.Duration(g.rng.Float64() * 3 * interval)
		} else if g.rng.Intn(2) == 0 {
			now += time.Duration(g.rng.Intn(1000))
		}
		frozen := curRate == 0
		unlimited := math.IsInf(curRate, 1)
		kind := g.rng.Intn(100)
		switch {
		case kind < 35:
			n := g.pickN(curBurst)
			if n == 0 && (lim.TokensAt(t0.Add(now)) < 0 || lastEvent.After(t0.Add(now))) {
				// Deliberate differences: Go refuses n == 0 behind debt, and an n == 0 take
				// moves its lastEvent back to now even while later bookings wait.
				n = 1
			}
			g.avoidTie(lim, &now, t0, n, 0, false)
			t := t0.Add(now)
			ok := lim.AllowN(t, n)
			if ok && !unlimited && !frozen {
				lastEvent = t
			}
			fmt.Fprintf(g.out, "allow %d %d %d %s\n", now, n, b2i(ok), fmtFloat(lim.TokensAt(t)))
		case kind < 65:
			n := g.pickN(curBurst)
			if n == 0 && (lim.TokensAt(t0.Add(now)) < 0 || lastEvent.After(t0.Add(now))) {
				n = 1 // as for allow: n == 0 waits behind debt in Go and moves its lastEvent
			}
			if deficit := float64(n) - lim.TokensAt(t0.Add(now)); deficit/curRate > 100*365*86400 {
				// Go's wait overflows time.Duration past 292 years and it acts at once; sluice
				// saturates or refuses (deliberate). Stay within a century.
				n = 1
			}
			var maxWait time.Duration = rate.InfDuration
			if g.rng.Intn(3) == 0 && curRate > 0 && !unlimited {
				maxWait = time.Duration(g.rng.Float64() * 4 * float64(time.Second) / curRate)
			}
			g.avoidTie(lim, &now, t0, n, maxWait, true)
			t := t0.Add(now)
			// Go's reserveN with a maximum wait is not exported: refuse here with its own
			// arithmetic (a refused reservation changes nothing).
			var res *rate.Reservation
			deficit := float64(n) - lim.TokensAt(t)
			if deficit <= 0 || maxWait == rate.InfDuration ||
				time.Duration(float64(time.Second)*(deficit/curRate)) <= maxWait {
				res = lim.ReserveN(t, n)
			}
			ok := res != nil && res.OK()
			delay := int64(-1)
			if ok {
				delay = int64(res.DelayFrom(t))
				if !unlimited && !frozen {
					lastEvent = t.Add(time.Duration(delay))
				}
			}
			mw := "inf"
			if maxWait != rate.InfDuration {
				mw = strconv.FormatInt(int64(maxWait), 10)
			}
			if unlimited {
				// Go's unlimited path hands out reservations that record no rate, and
				// cancelling one later (at a finite rate) gives back tokens it never took;
				// sluice gives back nothing (a deliberate difference). Never cancel them.
				res = nil
			}
			bookings = append(bookings, booking{res: res, at: t, n: n, limit: curRate})
			fmt.Fprintf(g.out, "reserve %d %d %s %d %d %s\n", now, n, mw, b2i(ok), delay,
				fmtFloat(lim.TokensAt(t)))
		case kind < 80 && len(bookings) > 0 && !frozen:
			// Prefer recent reservations: those are the ones a cancel can still give back.
			idx := len(bookings) - 1 - g.rng.Intn(min(len(bookings), 4))
			b := bookings[idx]
			if b.res != nil && b.res.OK() {
				// Go gives back nothing once t is after timeToAct; sluice's timeToAct is rounded
				// up to whole ns and Go's down, so keep clear of the instants just after it.
				tta := b.at.Add(b.res.DelayFrom(b.at))
				if d := t0.Add(now).Sub(tta); d > 0 && d <= 100 {
					now += 200
				}
			}
			if b.res != nil && b.res.OK() {
				// Go decides "was this the latest booking?" by exact equality of two times it
				// truncated to whole ns separately; 1 ns apart, it says no where exact
				// arithmetic (and sluice, which allows for that rounding) says yes.
				if d := lastEvent.Sub(b.at.Add(b.res.DelayFrom(b.at))); d != 0 && d >= -2 && d <= 2 {
					continue
				}
			}
			t := t0.Add(now)
			if lastEvent.Before(t) {
				if !lim.AllowN(t, 0) {
					continue
				}
				lastEvent = t
				fmt.Fprintf(g.out, "allow %d 0 1 %s\n", now, fmtFloat(lim.TokensAt(t)))
			}
			if b.res != nil {
				lastEvent = goCancel(lim, b, t, lastEvent)
				bookings[idx].res = nil // cancel once; later picks cancel nothing
			}
			fmt.Fprintf(g.out, "cancel %d %d %s\n", now, idx, fmtFloat(lim.TokensAt(t)))
		case kind < 90 && !frozen && !unlimited:
			nr := g.pickRate()
			if g.rng.Intn(15) == 0 {
				nr = math.Inf(1)
			}
			t := t0.Add(now)
			lim.SetLimitAt(t, limitOf(nr))
			curRate = nr
			fmt.Fprintf(g.out, "setrate %d %s %s\n", now, fmtFloat(nr), fmtFloat(lim.TokensAt(t)))
		case kind < 90 && unlimited && now > 0:
			// Leave "unlimited" only after some time has passed: Go refills on the way out only
			// if its clock moved (a deliberate difference at the same instant).
			nr := g.pickRate()
			now += 1000
			t := t0.Add(now)
			lim.SetLimitAt(t, limitOf(nr))
			curRate = nr
			fmt.Fprintf(g.out, "setrate %d %s %s\n", now, fmtFloat(nr), fmtFloat(lim.TokensAt(t)))
		case !frozen:
			nb := 1 + g.rng.Intn(2*curBurst)
			t := t0.Add(now)
			lim.SetBurstAt(t, nb)
			curBurst = nb
			fmt.Fprintf(g.out, "setburst %d %d %s\n", now, nb, fmtFloat(lim.TokensAt(t)))
		}
	}
	fmt.Fprintln(g.out, "end")
}

// goCancel cancels b's reservation at t and returns Go's lastEvent afterwards, by CancelAt's
// own rule (the Limiter does not export it).
func goCancel(lim *rate.Limiter, b booking, t time.Time, lastEvent time.Time) time.Time {
	b.res.CancelAt(t)
	tta := b.at.Add(b.res.DelayFrom(b.at))
	n := float64(b.n)
	if !b.res.OK() || math.IsInf(b.limit, 1) || n == 0 || tta.Before(t) {
		return lastEvent
	}
	if restore := n - lastEvent.Sub(tta).Seconds()*b.limit; restore <= 0 {
		return lastEvent
	}
	if tta.Equal(lastEvent) {
		if prev := tta.Add(time.Duration(float64(time.Second) * (-n / b.limit))); !prev.Before(t) {
			return prev
		}
	}
	return lastEvent
}

// avoidTie moves `now` forward until taking n tokens is clearly possible or clearly not, and
// (for a reservation with a maximum wait) the wait is clearly inside or outside it.
func (g *gen) avoidTie(lim *rate.Limiter, now *time.Duration, t0 time.Time, n int,
	maxWait time.Duration, reserve bool) {
	r := float64(lim.Limit())
	if r == 0 || math.IsInf(r, 1) || r == float64(rate.Inf) || n == 0 {
		return
	}
	for step := 0; step < 1000; step++ {
		tokens := lim.TokensAt(t0.Add(*now))
		deficit := float64(n) - tokens // tokens still missing
		margin := 1e-6*math.Max(1, math.Abs(tokens)) + r*200e-9
		tie := math.Abs(deficit) < margin
		if reserve && maxWait != rate.InfDuration && deficit > 0 {
			wait := time.Duration(deficit / r * float64(time.Second))
			d := wait - maxWait
			if d < 0 {
				d = -d
			}
			tie = tie || d < 200+time.Duration(1e-6*float64(wait))
		}
		if !tie {
			return
		}
		*now += 250 + time.Duration(g.rng.Intn(500))
	}
}

// limitOf maps +Inf to rate.Inf, the largest float64: Go compares limits to it, and +Inf itself
// would turn 0 elapsed seconds into NaN tokens.
func limitOf(r float64) rate.Limit {
	if math.IsInf(r, 1) {
		return rate.Inf
	}
	return rate.Limit(r)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func main() {
	seed := flag.Int64("seed", 1, "random seed")
	count := flag.Int("n", 1000, "number of scenarios")
	flag.Parse()
	g := &gen{rng: rand.New(rand.NewSource(*seed)), out: bufio.NewWriter(os.Stdout)}
	for i := 0; i < *count; i++ {
		g.scenario(i)
	}
	if err := g.out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
