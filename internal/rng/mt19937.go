package rng

// mtN is the MT19937 state size in 32-bit words; mtM the twist offset.
const (
	mtN = 624
	mtM = 397
)

// mt19937 is torch's MT19937 engine (aten/src/ATen/core/MT19937RNGEngine.h, flow-sampling.md
// §7.1), whose output stream is std::mt19937's. torch counts down a "left" field and twists when it
// reaches 0; pos counts up to the same effect: the next output is state[pos] tempered, and
// pos == mtN means the state must be twisted first.
type mt19937 struct {
	state [mtN]uint32
	pos   int
}

// seed is torch's manual_seed for the engine: state[0] = seed & 0xffffffff (torch truncates the
// 64-bit seed to its low 32 bits), then Knuth's initialisation; the first draw twists.
func (m *mt19937) seed(seed uint64) {
	m.state[0] = uint32(seed)
	for j := 1; j < mtN; j++ {
		p := m.state[j-1]
		m.state[j] = 1812433253*(p^p>>30) + uint32(j)
	}
	m.pos = mtN
}

// twist regenerates the whole state (torch's next_state).
func (m *mt19937) twist() {
	st := &m.state
	for i := 0; i < mtN-mtM; i++ {
		st[i] = st[i+mtM] ^ mtMix(st[i], st[i+1])
	}
	for i := mtN - mtM; i < mtN-1; i++ {
		st[i] = st[i+mtM-mtN] ^ mtMix(st[i], st[i+1])
	}
	st[mtN-1] = st[mtM-1] ^ mtMix(st[mtN-1], st[0])
	m.pos = 0
}

func mtMix(u, v uint32) uint32 {
	return (u&0x80000000|v&0x7fffffff)>>1 ^ (-(v & 1) & 0x9908b0df)
}

func temper(y uint32) uint32 {
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	return y ^ y>>18
}

// uint32 is torch's random(): one tempered 32-bit output.
func (m *mt19937) uint32() uint32 {
	if m.pos == mtN {
		m.twist()
	}
	y := m.state[m.pos]
	m.pos++
	return temper(y)
}

// uint64 is torch's random64(): the first 32-bit draw is the high half.
func (m *mt19937) uint64() uint64 {
	hi := m.uint32()
	return uint64(hi)<<32 | uint64(m.uint32())
}

// uniform64 is uniform_real_distribution<double>(0, 1): (random64 & (2^53-1))·2^-53, in [0, 1).
func (m *mt19937) uniform64() float64 {
	return float64(m.uint64()&(1<<53-1)) * 0x1p-53
}

// fillUniform32 sets dst[i] to successive uniform_real_distribution<float>(0, 1) draws:
// (random() & (2^24-1))·2^-24, one 32-bit output each, exactly representable and in [0, 1).
func (m *mt19937) fillUniform32(dst []float32) {
	for len(dst) > 0 {
		if m.pos == mtN {
			m.twist()
		}
		words := m.state[m.pos:min(mtN, m.pos+len(dst))]
		out := dst[:len(words)]
		for i, y := range words {
			out[i] = float32(temper(y)&(1<<24-1)) * 0x1p-24
		}
		m.pos += len(words)
		dst = dst[len(words):]
	}
}
