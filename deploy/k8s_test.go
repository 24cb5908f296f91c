// Package deploy holds the tests of the deployment files: the Kubernetes manifests strictly decoded
// into the API's own types and checked for consistency, the Dockerfile's rules, the Slurm script.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// documents splits a YAML file into its documents (comments and blank documents dropped).
func documents(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// decodeStrict decodes one document into v, refusing unknown or misspelt fields.
func decodeStrict(t *testing.T, path string, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// kinds reads apiVersion and kind.
func kindOf(t *testing.T, path string, doc []byte) string {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tm.APIVersion + "/" + tm.Kind
}

// flagValue is the value of --name=value in args ("" when absent).
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// TestKubernetesManifests decodes every file of k8s/ strictly into k8s.io/api types and checks what
// a strict decode cannot: the shard count agrees with completions, the failure policy never retries
// usage errors, --threads follows the CPU request, every claim is defined in its own file (never in a
// Job's, so deleting the Job keeps the images), the Job has a deadline and a ttl.
func TestKubernetesManifests(t *testing.T) {
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) < 4 {
		t.Fatalf("k8s/ has %d files: %v", len(files), files)
	}
	claims := map[string]corev1.PersistentVolumeClaim{}
	var jobs []batchv1.Job
	var jobFiles []string
	for _, path := range files {
		docs := documents(t, path)
		for _, doc := range docs {
			switch k := kindOf(t, path, doc); k {
			case "v1/PersistentVolumeClaim":
				var pvc corev1.PersistentVolumeClaim
				decodeStrict(t, path, doc, &pvc)
				if len(docs) != 1 {
					t.Errorf("%s: a claim shares its file with other objects; keep each claim in a file of its own", path)
				}
				claims[pvc.Name] = pvc
			case "batch/v1/Job":
				var job batchv1.Job
				decodeStrict(t, path, doc, &job)
				jobs, jobFiles = append(jobs, job), append(jobFiles, path)
			default:
				t.Errorf("%s: unexpected %s", path, k)
			}
		}
	}
	if len(jobs) != 2 {
		t.Fatalf("%d Jobs, want the CPU and the GPU one", len(jobs))
	}
	gpus := 0
	for i, job := range jobs {
		name := jobFiles[i]
		checkJob(t, name, job, claims)
		c := job.Spec.Template.Spec.Containers[0]
		if _, ok := c.Resources.Limits["nvidia.com/gpu"]; ok {
			gpus++
			if flagValue(c.Args, "provider") != "cuda" {
				t.Errorf("%s: a GPU pod without --provider=cuda", name)
			}
		}
	}
	if gpus != 1 {
		t.Errorf("%d Jobs ask for nvidia.com/gpu, want 1", gpus)
	}
	for name, pvc := range claims {
		if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
			t.Errorf("claim %s: pods on several nodes share it: want ReadWriteMany, got %v", name, pvc.Spec.AccessModes)
		}
	}
}

func checkJob(t *testing.T, name string, job batchv1.Job, claims map[string]corev1.PersistentVolumeClaim) {
	t.Helper()
	s := job.Spec
	pod := s.Template.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion || s.Completions == nil || s.Parallelism == nil {
		t.Fatalf("%s: want an Indexed Job with completions and parallelism", name)
	}
	n := int(*s.Completions)
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "batch" {
		t.Fatalf("%s: args %v, want rflow batch's", name, c.Args)
	}
	// Shards: --shards must equal completions (fewer completions lose shards, more run past N).
	if shards, err := strconv.Atoi(flagValue(c.Args, "shards")); err != nil || shards != n {
		t.Errorf("%s: --shards=%q but completions %d: keep them equal", name, flagValue(c.Args, "shards"), n)
	}
	if flagValue(c.Args, "shard") != "" {
		t.Errorf("%s: a fixed --shard would run one shard in every pod", name)
	}
	if p := int(*s.Parallelism); p < 1 || p > n {
		t.Errorf("%s: parallelism %d outside [1, completions %d]", name, p, n)
	}
	if s.BackoffLimitPerIndex == nil || s.MaxFailedIndexes == nil || int(*s.MaxFailedIndexes) > n {
		t.Errorf("%s: want backoffLimitPerIndex and maxFailedIndexes ≤ completions", name)
	}
	if s.ActiveDeadlineSeconds == nil || s.TTLSecondsAfterFinished == nil {
		t.Errorf("%s: want activeDeadlineSeconds and ttlSecondsAfterFinished", name)
	}
	// Failure policy: exit 2 (usage, or another batch in --out) never retried, exit 3 fails its index,
	// disruptions ignored.
	if pod.RestartPolicy != corev1.RestartPolicyNever || s.PodFailurePolicy == nil {
		t.Fatalf("%s: want restartPolicy Never and a podFailurePolicy", name)
	}
	actionFor := map[int32]batchv1.PodFailurePolicyAction{}
	disruptionIgnored := false
	for _, r := range s.PodFailurePolicy.Rules {
		if r.OnExitCodes != nil && r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn {
			for _, v := range r.OnExitCodes.Values {
				actionFor[v] = r.Action
			}
		}
		for _, p := range r.OnPodConditions {
			disruptionIgnored = disruptionIgnored || p.Type == corev1.DisruptionTarget && r.Action == batchv1.PodFailurePolicyActionIgnore
		}
	}
	if actionFor[2] != batchv1.PodFailurePolicyActionFailJob || actionFor[3] != batchv1.PodFailurePolicyActionFailIndex || !disruptionIgnored {
		t.Errorf("%s: pod failure policy %v (disruptions ignored: %v); want exit 2 FailJob, 3 FailIndex, DisruptionTarget Ignore",
			name, actionFor, disruptionIgnored)
	}
	// --threads from the CPU request.
	cpu, ok := c.Resources.Requests[corev1.ResourceCPU]
	if !ok {
		t.Errorf("%s: no CPU request", name)
	}
	threads := flagValue(c.Args, "threads")
	switch env, isRef := strings.CutPrefix(threads, "$("); {
	case isRef:
		env = strings.TrimSuffix(env, ")")
		found := false
		for _, e := range c.Env {
			if e.Name == env && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
				ref := e.ValueFrom.ResourceFieldRef
				found = ref.Resource == "requests.cpu" && ref.Divisor.Cmp(resource.MustParse("1")) == 0
			}
		}
		if !found {
			t.Errorf("%s: --threads=%s but $%s is not requests.cpu (divisor 1) from the downward API", name, threads, env)
		}
	case threads != fmt.Sprint(cpu.Value()):
		t.Errorf("%s: --threads=%q with a CPU request of %s", name, threads, cpu.String())
	}
	// Volumes: the manifest, the output claim and the model claim, each defined; models read-only.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		if _, ok := claims[v.PersistentVolumeClaim.ClaimName]; !ok {
			t.Errorf("%s: volume %s uses claim %s, which no file defines", name, v.Name, v.PersistentVolumeClaim.ClaimName)
		}
		m, ok := mounts[v.Name]
		switch {
		case !ok:
			t.Errorf("%s: volume %s is not mounted", name, v.Name)
		case m.MountPath == flagValue(c.Args, "out"):
			if m.ReadOnly {
				t.Errorf("%s: the output volume is read-only", name)
			}
		case strings.HasPrefix(flagValue(c.Args, "model"), m.MountPath+"/"):
			if !m.ReadOnly {
				t.Errorf("%s: mount the model volume read-only", name)
			}
		default:
			t.Errorf("%s: claim volume %s at %s is neither --out nor the --model's", name, v.Name, m.MountPath)
		}
	}
	for _, flag := range []string{"out", "manifest", "model"} {
		v := flagValue(c.Args, flag)
		covered := false
		for _, m := range c.VolumeMounts {
			covered = covered || v == m.MountPath || strings.HasPrefix(v, m.MountPath+"/")
		}
		if !covered {
			t.Errorf("%s: --%s=%s is on no mounted volume", name, flag, v)
		}
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: want runAsNonRoot", name)
	}
}

// TestDockerfile checks the image's rules: multi-stage, every base image pinned to a version (no
// latest), ONNX Runtime installed by scripts/install-ort.sh (verified by sha256), a non-root user.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	user := ""
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, f[1])
		}
		if len(f) >= 2 && strings.EqualFold(f[0], "USER") {
			user = f[1]
		}
	}
	if len(froms) < 3 {
		t.Errorf("%d stages, want separate ORT, build and runtime stages", len(froms))
	}
	args := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ARG (\w+)=(\S+)`).FindAllStringSubmatch(string(data), -1) {
		args[m[1]] = m[2]
	}
	stages := map[string]bool{"scratch": true}
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)`).FindAllStringSubmatch(string(data), -1) {
		stages[m[1]] = true
	}
	for _, from := range froms {
		img := regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(from, func(v string) string { return args[v[2:len(v)-1]] })
		if stages[img] {
			continue
		}
		tag := img[strings.LastIndex(img, ":")+1:]
		if !strings.Contains(img, ":") || tag == "latest" || !regexp.MustCompile(`\d`).MatchString(tag) {
			t.Errorf("base %s (%s) is not pinned to a version", from, img)
		}
	}
	if !bytes.Contains(data, []byte("scripts/install-ort.sh")) {
		t.Error("the image does not install ONNX Runtime with scripts/install-ort.sh (sha256-verified)")
	}
	if user == "" || user == "root" || user == "0" || strings.HasPrefix(user, "0:") {
		t.Errorf("final USER %q, want a non-root user", user)
	}
}

// The strict decode is what catches a misspelt field (completion: 8 is silently dropped by a lenient one).
func TestStrictDecodeRefusesUnknownFields(t *testing.T) {
	var job batchv1.Job
	err := yaml.UnmarshalStrict([]byte("apiVersion: batch/v1\nkind: Job\nspec:\n  completion: 8\n"), &job)
	if err == nil || !strings.Contains(err.Error(), "completion") {
		t.Fatalf("misspelt field: %v", err)
	}
}
