# TLS listeners (certificate checks, ALPN, opt-in HTTP/2) and https:// backends verified against a CA.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;
use Time::HiRes qw(time);

my $dir = tmpdir();

# a test CA and a server certificate for localhost / 127.0.0.1 signed by it, plus an unrelated CA
sub openssl {
    my $r = run_cmd(['openssl', split ' ', $_[0]], timeout => 30);
    die "openssl $_[0]: $r->{err}" if ($r->{code} // -1) != 0;
}
openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=conflux-test-ca -keyout $dir/ca.key -out $dir/ca.pem");
openssl("req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout $dir/server.key -out $dir/server.csr");
write_file("$dir/san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
openssl("x509 -req -in $dir/server.csr -CA $dir/ca.pem -CAkey $dir/ca.key -CAcreateserial -days 2 -extfile $dir/san.ext -out $dir/server.pem");
openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout $dir/other.key -out $dir/other.pem");
write_file("$dir/garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /slow
    body: '{}'
    delay: 2s
EOF
my $m = $mock->port;

sub tls_conf {
    my (%o) = @_;
    my $port = $o{port} // empty_port();
    my $h2 = $o{http2} ? "\n    http2: true" : '';
    my $cert = $o{cert} // "$dir/server.pem";
    my $key = $o{key} // "$dir/server.key";
    my $admin = $o{admin} ? "admin: 127.0.0.1:$o{admin}\n" : '';
    return <<"EOF";
listen:
  - host: 127.0.0.1
    port: $port
    tls: { certificate: $cert, key: $key }$h2
threads: 2
$admin
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 3s }
routes:
  - path: /u/{id}
    calls: [{ name: user, backend: svc, path: "/users/{id}" }]
  - path: /slow
    calls: [{ name: s, backend: svc, path: "/slow" }]
EOF
}

# TCP connections established to 127.0.0.1:$port, from /proc/net/tcp (no tool needed): the lines whose local
# address is that port, in state 01 (ESTABLISHED)
sub established_from {
    my ($port) = @_;
    open my $fh, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!";
    my $want = sprintf("0100007F:%04X", $port);
    return scalar grep { my @f = split; @f > 3 && $f[1] eq $want && $f[3] eq '01' } <$fh>;
}

# curl over TLS to localhost:$port, verified against the test CA; returns (status, http_version, body)
sub curl_tls {
    my ($port, $path, @opts) = @_;
    my $url = "https://localhost:$port$path";
    my $r = run_cmd(['curl', '-s', '--cacert', "$dir/ca.pem", '--resolve', "localhost:$port:127.0.0.1", '-w',
                     '\n%{http_code} %{http_version}', @opts, $url]);
    my $out = $r->{out} . $r->{err};
    my ($body, $status, $version) = $out =~ /^(.*)\n(\d+) (\S+)$/s;
    return ($status // 0, $version // '', $body // $out);
}

sub check {
    my ($yaml) = @_;
    my $file = write_file("$dir/check-" . int(rand(1e9)) . ".yaml", $yaml);
    my $r = run_cmd([bindir() . '/conflux', '-t', '-c', $file]);
    return ($r->{code} // -1, $r->{out} . $r->{err}, $file);
}

subtest 'HTTPS on a tls: listener' => sub {
    my $gw = spawn_conflux(tls_conf());
    like($gw->log_text, qr/listening on 127\.0\.0\.1:\d+ \(tls\)/, 'logged as tls');
    my ($status, $version, $body) = curl_tls($gw->port, '/u/7');
    is($status, 200, '200 over TLS');
    is($body, '{"user":{"id":"7"}}', 'the answer');
    is($version, '1.1', 'HTTP/1.1');
    ($status, $version) = curl_tls($gw->port, '/u/7', '--http2');
    is($version, '1.1', 'ALPN without http2: true negotiates http/1.1 even when the client offers h2');
    my $plain = http_get('http://127.0.0.1:' . $gw->port . '/u/1');
    isnt($plain->{status}, 200, 'plain HTTP on the TLS port is not served');
    my ($old) = curl_tls($gw->port, '/u/1', '--tls-max', '1.1');
    is($old, '000', 'TLS 1.1 is refused');
};

subtest 'http2: true offers h2 through ALPN' => sub {
    my $admin = empty_port();
    my $gw = spawn_conflux(tls_conf(http2 => 1, admin => $admin));
    my ($status, $version, $body) = curl_tls($gw->port, '/u/9', '--http2');
    is($status, 200, 'status 200');
    is($version, '2', 'HTTP/2');
    is($body, '{"user":{"id":"9"}}', 'the answer');
    ($status, $version) = curl_tls($gw->port, '/u/9', '--http1.1');
    is($version, '1.1', 'HTTP/1.1 still offered');

    # a client that gives up on an HTTP/2 request: the stream's request is disposed and its upstream call cancelled
    $mock->reset;
    my $t0 = time;
    curl_tls($gw->port, '/slow', '--http2', '-m', '0.5');
    ok(wait_until(sub { $mock->stats->{aborted} }, 3), 'the call was cancelled (the upstream saw its connection close)');
    cmp_ok(time - $t0, '<', 1.8, 'before the upstream would have answered');
    is($mock->stats->{total}, 1, 'it was the one call that reached the upstream');
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }, 2), 'nothing left in flight');
};

subtest '-t names a bad certificate or key' => sub {
    my ($rc, $out) = check(tls_conf(cert => "$dir/garbage.pem"));
    is($rc, 1, 'garbage certificate: exit 1');
    like($out, qr/check-\d+\.yaml:4:10: listen\[0\]\.tls\.certificate: cannot load "\Q$dir\E\/garbage\.pem": /, 'names file:line:col, key and path') or diag $out;
    ($rc, $out) = check(tls_conf(cert => "$dir/missing.pem"));
    is($rc, 1, 'missing certificate: exit 1');
    like($out, qr/listen\[0\]\.tls\.certificate: cannot load "\Q$dir\E\/missing\.pem"/, 'names it') or diag $out;
    ($rc, $out) = check(tls_conf(key => "$dir/other.key"));
    is($rc, 1, 'a key of another certificate: exit 1');
    like($out, qr/listen\[0\]\.tls\.key: "\Q$dir\E\/other\.key" does not match the certificate/, 'says so') or diag $out;
    ($rc, $out) = check(tls_conf(key => "$dir/ca.pem"));
    is($rc, 1, 'a certificate as the key: exit 1');
    like($out, qr/listen\[0\]\.tls\.key: cannot load/, 'says so') or diag $out;
    ($rc, $out) = check(tls_conf());
    is($rc, 0, 'good files: exit 0') or diag $out;
    ($rc, $out) = check("listen: [{port: 1, http2: true}]\nroutes: []\n");
    is($rc, 1, 'http2 without tls: exit 1');
    like($out, qr/listen\[0\]\.http2: HTTP\/2 is offered through TLS ALPN only: it needs tls:/, 'says so') or diag $out;
};

subtest 'https:// backends: verified against ca_file, pooled' => sub {
    # the backend: another conflux with a TLS listener in front of the mock
    my $back = spawn_conflux(tls_conf());
    my $bp = $back->port;
    my $front = spawn_conflux(<<"EOF");
threads: 1
backends:
  good: { url: "https://127.0.0.1:$bp", ca_file: $dir/ca.pem, sni: localhost, timeout: 2s }
  byip: { url: "https://127.0.0.1:$bp", ca_file: $dir/ca.pem, timeout: 2s }
  wrongca: { url: "https://127.0.0.1:$bp", ca_file: $dir/other.pem, sni: localhost, timeout: 2s }
  wrongname: { url: "https://127.0.0.1:$bp", ca_file: $dir/ca.pem, sni: example.com, timeout: 2s }
  system: { url: "https://127.0.0.1:$bp", sni: localhost, timeout: 2s }
routes:
  - path: /good/{id}
    calls: [{ name: r, backend: good, path: "/u/{id}", required: true }]
  - path: /byip
    calls: [{ name: r, backend: byip, path: "/u/3", required: true }]
  - path: /wrongca
    calls: [{ name: r, backend: wrongca, path: "/u/1", required: true }]
  - path: /wrongname
    calls: [{ name: r, backend: wrongname, path: "/u/1", required: true }]
  - path: /system
    calls: [{ name: r, backend: system, path: "/u/1", required: true }]
EOF
    my $r = http_get($front->url('/good/5'));
    is($r->{status}, 200, 'https backend: 200');
    is($r->{body}, '{"r":{"user":{"id":"5"}}}', 'its answer');
    for my $i (1 .. 5) {
        is(http_get($front->url("/good/$i"))->{status}, 200, "again ($i)");
    }
    # pooled: the five sequential calls above reused one TLS connection (the backend's /proc shows its sockets)
    my $conns = established_from($bp);
    is($conns, 1, 'one pooled connection to the backend');
    my $w = http_get($front->url('/wrongca'));
    is($w->{status}, 502, 'a certificate from another CA: 502');
    like($w->{body}, qr/"error":"connect_failed"/, 'connect_failed') or diag $w->{body};
    $w = http_get($front->url('/wrongname'));
    is($w->{status}, 502, 'a certificate for another name: 502');
    $w = http_get($front->url('/system'));
    is($w->{status}, 502, 'the test CA is not in the system store: 502');
    $w = http_get($front->url('/byip'));
    is($w->{status}, 200, 'an IP-address URL without sni: verified against the certificate\'s IP address');
};

subtest 'config: https:// URLs, ca_file, sni' => sub {
    my ($rc, $out) = check("listen: [{port: 1}]\nbackends:\n  b: { url: \"https://x\", ca_file: $dir/nope.pem }\nroutes: []\n");
    is($rc, 1, 'a missing ca_file: exit 1');
    like($out, qr/:3:\d+: backends\.b\.ca_file: cannot read "\Q$dir\E\/nope\.pem"/, 'names it') or diag $out;
    ($rc, $out) = check("listen: [{port: 1}]\nbackends:\n  b: { url: \"https://x\", sni: \"a b\" }\nroutes: []\n");
    is($rc, 1, 'a bad sni: exit 1');
    like($out, qr/backends\.b\.sni: "a b" is not a host name/, 'says so') or diag $out;
};

done_testing;
