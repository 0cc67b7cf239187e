// Reads X.509 certificates with Go's crypto/x509 for the zhuanfu interop tests: one
// JSON object per PEM file named on the command line, {file: {cn, uid, ca, eku, dns,
// ip, uri}}, or a non-zero exit naming the file that failed.
package main

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
)

type reading struct {
	CN  string   `json:"cn"`
	UID string   `json:"uid"`
	CA  bool     `json:"ca"`
	EKU []string `json:"eku"`
	DNS []string `json:"dns"`
	IP  []string `json:"ip"`
	URI []string `json:"uri"`
}

var oidUserID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// The extended key usages Go names itself, back to their OIDs.
var knownEKU = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageServerAuth: "1.3.6.1.5.5.7.3.1",
	x509.ExtKeyUsageClientAuth: "1.3.6.1.5.5.7.3.2",
}

func read(path string) (reading, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return reading{}, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return reading{}, fmt.Errorf("no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return reading{}, err
	}
	r := reading{CN: cert.Subject.CommonName, CA: cert.IsCA, EKU: []string{}, DNS: cert.DNSNames,
		IP: []string{}, URI: []string{}}
	for _, n := range cert.Subject.Names {
		if n.Type.Equal(oidUserID) {
			r.UID = fmt.Sprint(n.Value)
		}
	}
	for _, u := range cert.ExtKeyUsage {
		name, ok := knownEKU[u]
		if !ok {
			name = fmt.Sprintf("go:%d", u)
		}
		r.EKU = append(r.EKU, name)
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		r.EKU = append(r.EKU, oid.String())
	}
	if r.DNS == nil {
		r.DNS = []string{}
	}
	for _, ip := range cert.IPAddresses {
		r.IP = append(r.IP, ip.String())
	}
	for _, u := range cert.URIs {
		r.URI = append(r.URI, u.String())
	}
	return r, nil
}

func main() {
	out := map[string]reading{}
	for _, path := range os.Args[1:] {
		r, err := read(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(1)
		}
		out[path] = r
	}
	enc, _ := json.Marshal(out)
	fmt.Println(string(enc))
}
