package demo

import "math"

// Shape geometry, in normalised coordinates: u to the right, v down, both in [−1, 1] across the image.
const (
	circleR     = 0.6
	squareHalf  = 0.52
	triangleR   = 0.72 // circumradius
	starOuter   = 0.84
	starInner   = starOuter * 0.42
	ringR       = 0.55
	ringHalf    = 0.16
	stripePitch = 0.5   // fg bands centred at v = ±0.25, ±0.75
	stripeHalf  = 0.125 // half-width of a band
	// cornerR rounds the convex corners of the square, triangle and star (about one base latent
	// pixel): a sharper tip than the 32×32 field can carry would be drawn cut short and smeared.
	cornerR = 0.07
)

type point struct{ u, v float64 }

// polygons of the triangle and the star, built once.
var (
	squarePoly   = erode([]point{{-squareHalf, -squareHalf}, {squareHalf, -squareHalf}, {squareHalf, squareHalf}, {-squareHalf, squareHalf}}, cornerR)
	trianglePoly = erode(regularPolygon(3, triangleR, 0, triangleR/4), cornerR)
	starPoly     = erode(starPolygon(5, starOuter, starInner, (starOuter-starOuter*math.Cos(math.Pi/5))/2), cornerR)
)

// erode moves every edge of a polygon (either orientation) inward by r: each vertex goes to the
// intersection of its two offset edges. Shapes draw the eroded polygon's signed distance plus r,
// which restores the outline with convex corners rounded to radius r.
func erode(p []point, r float64) []point {
	area := 0.0
	for i := range p {
		a, b := p[i], p[(i+1)%len(p)]
		area += a.u*b.v - b.u*a.v
	}
	sign := 1.0 // inward normal of edge (a→b) is sign·(−e_v, e_u)/|e|
	if area < 0 {
		sign = -1
	}
	normal := func(a, b point) point {
		l := math.Hypot(b.u-a.u, b.v-a.v)
		return point{-sign * (b.v - a.v) / l, sign * (b.u - a.u) / l}
	}
	out := make([]point, len(p))
	for i := range p {
		prev, cur, next := p[(i+len(p)-1)%len(p)], p[i], p[(i+1)%len(p)]
		n1, n2 := normal(prev, cur), normal(cur, next)
		d := r / (1 + n1.u*n2.u + n1.v*n2.v)
		out[i] = point{cur.u + d*(n1.u+n2.u), cur.v + d*(n1.v+n2.v)}
	}
	return out
}

// regularPolygon has n vertices on radius r, the first pointing up, centred at (0, dv).
func regularPolygon(n int, r, du, dv float64) []point {
	p := make([]point, n)
	for i := range p {
		a := -math.Pi/2 + 2*math.Pi*float64(i)/float64(n)
		p[i] = point{du + r*math.Cos(a), dv + r*math.Sin(a)}
	}
	return p
}

// starPolygon alternates n outer and n inner vertices, the first tip up, centred at (0, dv).
func starPolygon(n int, outer, inner, dv float64) []point {
	p := make([]point, 2*n)
	for i := range p {
		r := outer
		if i%2 == 1 {
			r = inner
		}
		a := -math.Pi/2 + math.Pi*float64(i)/float64(n)
		p[i] = point{r * math.Cos(a), dv + r*math.Sin(a)}
	}
	return p
}

// polygonSD is the signed distance to a simple polygon: positive inside.
func polygonSD(poly []point, q point) float64 {
	d, inside := math.Inf(1), false
	for i := range poly {
		a, b := poly[i], poly[(i+1)%len(poly)]
		ex, ey := b.u-a.u, b.v-a.v
		wx, wy := q.u-a.u, q.v-a.v
		t := math.Max(0, math.Min(1, (wx*ex+wy*ey)/(ex*ex+ey*ey)))
		d = math.Min(d, math.Hypot(wx-t*ex, wy-t*ey))
		if (a.v > q.v) != (b.v > q.v) && q.u < a.u+(q.v-a.v)*ex/ey {
			inside = !inside
		}
	}
	if inside {
		return d
	}
	return -d
}

// SignedDistance is shape s's signed distance at q (normalised units, positive inside).
func SignedDistance(s int, u, v float64) float64 {
	q := point{u, v}
	switch Shapes[s] {
	case "circle":
		return circleR - math.Hypot(u, v)
	case "square":
		return polygonSD(squarePoly, q) + cornerR
	case "triangle":
		return polygonSD(trianglePoly, q) + cornerR
	case "star":
		return polygonSD(starPoly, q) + cornerR
	case "ring":
		return ringHalf - math.Abs(math.Hypot(u, v)-ringR)
	case "stripes":
		c := v/stripePitch - 0.5
		c -= math.Floor(c + 0.5) // distance to the nearest band centre, in pitches: [−0.5, 0.5)
		return stripeHalf - stripePitch*math.Abs(c)
	}
	panic("demo: unknown shape")
}

// sdfField is tanh(sd/w) with sd in base latent pixels, sampled at the BaseLatent² pixel centres.
func sdfField(s int) []float64 {
	n := BaseLatent
	f := make([]float64, n*n)
	px := float64(n) / 2 // latent pixels per normalised unit
	for i := range n {
		for j := range n {
			u, v := (float64(j)+0.5)/px-1, (float64(i)+0.5)/px-1
			f[i*n+j] = math.Tanh(SignedDistance(s, u, v) * px / FieldWidth)
		}
	}
	return f
}

// BaseField is shape s's field on the BaseLatent×BaseLatent grid (row-major, float32).
func BaseField(s int) []float32 {
	f := make([]float32, BaseLatent*BaseLatent)
	for i, v := range sdfField(s) {
		f[i] = float32(v)
	}
	return f
}

// FieldAt is shape s's field at latent size h×w, as the graphs compute it: BaseField resized
// (bilinear, half_pixel) to S×S with S = min(h, w), then edge-padded to h×w around the centre, so
// shapes keep their aspect on non-square images (stripes run on; the others sit centred).
func FieldAt(s, h, w int) []float32 {
	S := min(h, w)
	sq := Resize(BaseField(s), 1, BaseLatent, BaseLatent, S, S)
	top, left := (h-S)/2, (w-S)/2
	f := make([]float32, h*w)
	for i := range h {
		si := min(max(i-top, 0), S-1)
		for j := range w {
			f[i*w+j] = sq[si*S+min(max(j-left, 0), S-1)]
		}
	}
	return f
}
