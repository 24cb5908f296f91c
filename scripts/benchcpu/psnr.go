//go:build ignore

// psnr prints the PSNR in dB of each image against a reference (8-bit RGB, peak 255; "inf" when
// identical): go run scripts/benchcpu/psnr.go REF.png IMG.png...
package main

import (
	"fmt"
	"image"
	"image/draw"
	_ "image/png"
	"math"
	"os"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: psnr REF.png IMG.png...")
		os.Exit(2)
	}
	ref, err := load(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "psnr:", err)
		os.Exit(1)
	}
	for _, p := range os.Args[2:] {
		img, err := load(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "psnr:", err)
			os.Exit(1)
		}
		if img.Bounds() != ref.Bounds() {
			fmt.Fprintf(os.Stderr, "psnr: %s is %v, the reference %v\n", p, img.Bounds(), ref.Bounds())
			os.Exit(1)
		}
		var e float64
		n := 0
		for i := range ref.Pix {
			if i%4 == 3 {
				continue
			}
			d := float64(ref.Pix[i]) - float64(img.Pix[i])
			e += d * d
			n++
		}
		if e == 0 {
			fmt.Println("inf")
			continue
		}
		fmt.Printf("%.1f\n", 10*math.Log10(255*255/(e/float64(n))))
	}
}

func load(path string) (*image.RGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, draw.Src)
	return rgba, nil
}
