# SIGHUP reads the TLS certificate and key again: a renewed file takes effect for new handshakes, connections already
# up keep theirs, and a file that cannot be used keeps the previous pair with one line saying why.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;
use IO::Socket::SSL;
use File::Copy qw(copy);

my $dir = tmpdir() . "/tls-reload-$$";
mkdir $dir or die "$dir: $!";

sub openssl {
    my $r = run_cmd(['openssl', @_], timeout => 30);
    die "openssl @_: $r->{err}" if ($r->{code} // -1) != 0;
}
# self-signed pairs told apart by their CN
for my $cn (qw(one two three)) {
    openssl(qw(req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2), '-subj', "/CN=$cn", '-keyout',
            "$dir/$cn.key", '-out', "$dir/$cn.pem");
}
# one whose validity ended in 2020 (openssl req refuses a past date; openssl ca takes one)
write_file("$dir/ca.cnf", <<'EOF');
[ca]
default_ca = d
[d]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
[p]
commonName = supplied
EOF
write_file("$dir/index.txt", '');
write_file("$dir/serial", "01\n");
openssl(qw(req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=expired), '-keyout', "$dir/expired.key", '-out',
        "$dir/expired.csr");
{
    my $r = run_cmd(['sh', '-c', "cd $dir && openssl ca -batch -config ca.cnf -selfsign -keyfile expired.key -in expired.csr "
                     . "-startdate 20200101000000Z -enddate 20200102000000Z -out expired.pem"], timeout => 30);
    die "openssl ca: $r->{err}" if ($r->{code} // -1) != 0;
}

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
EOF
my $m = $mock->port;
my $port = empty_port();
my $admin = empty_port();

sub conf {
    my ($cert, $key, $tls) = @_;
    my $listen = ($tls // 1) ? "\n    tls: { certificate: $cert, key: $key }" : '';
    return <<"EOF";
listen:
  - host: 127.0.0.1
    port: $port$listen
threads: 2
admin: 127.0.0.1:$admin
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 3s }
routes:
  - path: /u/{id}
    calls: [{ name: user, backend: svc, path: "/users/{id}" }]
EOF
}

# a TLS connection (not verified: the certificates are self-signed); undef when the handshake fails
sub tls_connect {
    return IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $port, SSL_verify_mode => SSL_VERIFY_NONE,
                                SSL_hostname => 'localhost', Timeout => 5);
}

# the CN of the certificate a new connection is served
sub served_cn {
    my $s = tls_connect() or return "(handshake failed: $SSL_ERROR)";
    my $cn = $s->peer_certificate('commonName');
    close $s;
    return $cn;
}

# every one of `n` new connections is served `cn` (with two threads, the kernel spreads them over both loops)
sub all_served {
    my ($cn, $n) = @_;
    for (1 .. $n // 8) { return 0 if served_cn() ne $cn }
    return 1;
}

# one request on an open TLS connection; returns the status
sub get_on {
    my ($s, $path) = @_;
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n";
    my $head = '';
    while (defined(my $line = <$s>)) {
        $head .= $line;
        last if $line eq "\r\n";
    }
    my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
    read($s, my $body, $len // 0);
    return $head =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0;
}

copy("$dir/one.pem", "$dir/live.pem") or die;
copy("$dir/one.key", "$dir/live.key") or die;
my $gw = spawn_conflux(conf("$dir/live.pem", "$dir/live.key"));
my $file = $gw->{config};
my $reloads = 0;

# SIGHUP, then waits until the reload is done (its result line, after the certificates are read)
sub reload {
    $gw->signal('HUP');
    ++$reloads;
    return wait_until(sub { $gw->log_count(qr/^conflux: (?:reloaded |reload rejected)/m) >= $reloads }, 10);
}

my $kept = qr/keeping the previous one/;

subtest 'a renewed certificate at the same path takes effect on SIGHUP' => sub {
    is(served_cn(), 'one', 'the first certificate is served');
    my $old = tls_connect() or die "connect: $SSL_ERROR";
    is(get_on($old, '/u/1'), 200, 'a keep-alive connection is up');

    copy("$dir/two.pem", "$dir/live.pem") or die;
    copy("$dir/two.key", "$dir/live.key") or die;
    ok(reload(), 'reloaded');
    ok(wait_until(sub { served_cn() eq 'two' }, 5), 'new handshakes get the renewed certificate');
    ok(all_served('two'), 'on every thread');
    is(get_on($old, '/u/2'), 200, 'the connection from before the reload still serves requests');
    is($old->peer_certificate('commonName'), 'one', 'with the certificate it was opened with');
    close $old;
    is($gw->log_count($kept), 0, 'no complaint');
};

subtest 'a file that is not PEM keeps the previous certificate' => sub {
    write_file("$dir/live.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
    ok(reload(), 'reloaded');
    like($gw->log_text, qr/^conflux: reload: listener 127\.0\.0\.1:$port: certificate \Q$dir\E\/live\.pem: .+; keeping the previous one$/m,
         'one line names the listener, the file and why');
    is($gw->log_count($kept), 1, 'once, not once per thread');
    ok(all_served('two'), 'the previous certificate is still served');
    is(http_get("http://127.0.0.1:$admin/healthz")->{status}, 200, 'still healthy');
};

subtest 'a key that does not match keeps the previous certificate' => sub {
    copy("$dir/three.pem", "$dir/live.pem") or die;
    copy("$dir/one.key", "$dir/live.key") or die;
    ok(reload(), 'reloaded');
    like($gw->log_text, qr/^conflux: reload: listener 127\.0\.0\.1:$port: key \Q$dir\E\/live\.key: does not match the certificate \Q$dir\E\/live\.pem.*; keeping the previous one$/m,
         'the mismatch is named');
    is($gw->log_count($kept), 2, 'one more line');
    ok(all_served('two'), 'neither the new certificate nor a half-swapped pair: the previous one is served');
};

subtest 'a missing file keeps the previous certificate' => sub {
    unlink "$dir/live.pem";
    ok(reload(), 'reloaded');
    like($gw->log_text, qr/^conflux: reload: listener \S+: certificate \Q$dir\E\/live\.pem: No such file or directory; keeping the previous one$/m,
         'named');
    is($gw->log_count($kept), 3, 'one more line');
    ok(all_served('two'), 'the previous certificate is still served');
};

subtest 'an expired certificate loads, with a warning' => sub {
    copy("$dir/expired.pem", "$dir/live.pem") or die;
    copy("$dir/expired.key", "$dir/live.key") or die;
    ok(reload(), 'reloaded');
    like($gw->log_text, qr/^conflux: reload: listener \S+: certificate \Q$dir\E\/live\.pem: expired on Jan  2 00:00:00 2020 GMT; serving it anyway$/m,
         'the warning gives the date');
    is($gw->log_count($kept), 3, 'not refused');
    ok(all_served('expired'), 'it is served');
};

subtest 'the paths may change on reload; turning TLS off takes a restart' => sub {
    write_file($file, conf("$dir/one.pem", "$dir/one.key"));
    ok(reload(), 'reloaded');
    like($gw->log_text, qr/^conflux: reloaded /m, 'accepted');
    ok(all_served('one'), 'the file at the new path is served');

    write_file($file, conf(undef, undef, 0));
    ok(reload(), 'reloaded');
    like($gw->log_text, qr/reload rejected, keeping the running config: \S+: listen changed; that takes a restart/, 'refused');
    ok(all_served('one', 2), 'TLS is still served');
};

subtest 'a handshake under way during the reload finishes with the certificate it began with' => sub {
    # libh2o creates the SSL object only when the ClientHello arrives: the context must outlive the reload until then
    ok(wait_until(sub { $gw->metric('conflux_client_connections') == 0 }, 5), 'no connection open');
    my $pending = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die "connect: $!";
    ok(wait_until(sub { $gw->metric('conflux_client_connections') == 1 }, 5), 'accepted: its handshake waits for the ClientHello');
    write_file($file, conf("$dir/two.pem", "$dir/two.key"));
    ok(reload(), 'reloaded');
    ok(wait_until(sub { served_cn() eq 'two' }, 5), 'new connections get the new certificate');
    ok(IO::Socket::SSL->start_SSL($pending, SSL_verify_mode => SSL_VERIFY_NONE, SSL_hostname => 'localhost', Timeout => 5),
       'the pending handshake completes') or diag($SSL_ERROR);
    is($pending->peer_certificate('commonName'), 'one', 'with the certificate of its accept');
    is(get_on($pending, '/u/3'), 200, 'and serves a request');
    close $pending;
};

subtest '-t reports an expired certificate as a warning, not an error' => sub {
    my $check = write_file("$dir/check.yaml", conf("$dir/expired.pem", "$dir/expired.key"));
    my $r = run_cmd([bindir() . '/conflux', '-t', '-c', $check]);
    is($r->{code}, 0, 'exit 0');
    like($r->{out} . $r->{err}, qr/warning: \S+check\.yaml:\d+:\d+: listen\[0\]\.tls\.certificate: "\S+expired\.pem" expired on /,
         'the warning names the file');
};

$gw->stop;
done_testing;
