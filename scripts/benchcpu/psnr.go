//go:build ignore

// psnr prints the PSNR in dB of each image against a reference (8-bit RGB, peak 255; "inf" when
// identical; compare.PSNR): go run scripts/benchcpu/psnr.go REF.png IMG.png...
package main

import (
	"fmt"
	"image"
	_ "image/png"
	"math"
	"os"

	"github.com/rflowrt/rflow/compare"
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
		db, err := compare.PSNR(img, ref)
		if err != nil {
			fmt.Fprintln(os.Stderr, "psnr:", err)
			os.Exit(1)
		}
		if math.IsInf(db, 1) {
			fmt.Println("inf")
			continue
		}
		fmt.Printf("%.1f\n", db)
	}
}

func load(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}
