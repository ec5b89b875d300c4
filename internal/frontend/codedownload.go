package frontend

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"kindling/internal/awsapi"
	"kindling/internal/config"
)

// GetFunction's Code.Location: AWS answers with a presigned S3 URL valid
// for ten minutes; Kindling answers with a URL of its own, presigned with
// the caller's key (SigV4 query authentication, service lambda), that
// serves the deployment package as uploaded. The path names the function,
// the qualifier and the package, and the download checks that this
// function version of the caller's account has that package.

// codePrefix is the path of package downloads: codePrefix/NAME/QUALIFIER/KEY.
const codePrefix = "/kindling/code/"

// codeLocationExpiry is how long a Code.Location stays valid.
const codeLocationExpiry = 10 * time.Minute

// routeCodeDownload maps GET codePrefix/NAME/QUALIFIER/KEY.
func routeCodeDownload(r *http.Request, p string) (op, string, bool) {
	rest, ok := strings.CutPrefix(p, codePrefix)
	if !ok || r.Method != http.MethodGet {
		return 0, "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return 0, "", false
	}
	return opDownloadCode, parts[0], true
}

// codeLocation presigns the download URL of fn's package for the caller.
func (f *Frontend) codeLocation(req *request, fn *config.Function) string {
	if fn.CodeKey == "" || req.creds.SecretAccessKey == "" {
		return ""
	}
	u := url.URL{Scheme: "http", Host: req.r.Host,
		Path:     codePrefix + fn.Name + "/" + fn.Version + "/" + fn.CodeKey,
		RawQuery: "X-Amz-Expires=" + strconv.Itoa(int(codeLocationExpiry/time.Second))}
	if req.r.TLS != nil {
		u.Scheme = "https"
	}
	hr, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return ""
	}
	creds := aws.Credentials{AccessKeyID: req.creds.AccessKeyID, SecretAccessKey: req.creds.SecretAccessKey}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, hr, emptySHA256, "lambda", f.cfg.Region, f.cfg.Clock.Now())
	if err != nil {
		f.log.Warn("presigning Code.Location", "err", err)
		return ""
	}
	return signed
}

// emptySHA256 is the SHA-256 of an empty body, in hex.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// downloadCode serves a package after checking it is the one of the named
// function version in the caller's account.
func (f *Frontend) downloadCode(w http.ResponseWriter, req *request) {
	parts := strings.Split(strings.TrimPrefix(req.r.URL.EscapedPath(), codePrefix), "/")
	qualifier, err := url.PathUnescape(parts[1])
	if err != nil {
		f.fail(w, invalidParam("malformed qualifier"))
		return
	}
	fn, err := f.cfg.Functions.LookupQualified(req.r.Context(), req.account, req.name, qualifier, 0)
	if err != nil {
		f.fail(w, err)
		return
	}
	if fn.CodeKey != parts[2] {
		f.fail(w, &awsapi.Error{Status: http.StatusNotFound, Type: "ResourceNotFoundException",
			Message: "The deployment package of " + fn.QualifiedARN() + " is not " + shorten(parts[2])})
		return
	}
	zip, err := f.cfg.Code.Zip(fn.CodeKey)
	if err != nil {
		f.fail(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Length", strconv.Itoa(len(zip)))
	w.WriteHeader(http.StatusOK)
	w.Write(zip) // a failed write means the client is gone
}
