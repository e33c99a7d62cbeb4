# HTTP/2 floods on an explicit h2 listener: Rapid Reset (CVE-2023-44487) and frames that carry no request get
# GOAWAY (ENHANCE_YOUR_CALM) and a closed connection; reset streams leave no upstream exchange behind; other
# clients keep being served meanwhile. Raw frames over TLS with ALPN h2.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Select;
use IO::Socket::INET;
use Net::SSLeay;
use Test::More;
use Time::HiRes qw(time);

$SIG{PIPE} = "IGNORE"; # the server closes connections mid-flood: writes then fail instead of killing the test

my ($cert, $key) = self_signed_cert() or die 'openssl could not make a certificate';

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /slow
    body: '{}'
    delay: 3s
EOF
my $m = $mock->port;
my ($port, $admin) = (empty_port(), empty_port());
my $gw = spawn_conflux(<<"EOF");
listen:
  - host: 127.0.0.1
    port: $port
    tls: { certificate: $cert, key: $key }
    http2: true
threads: 1
admin: 127.0.0.1:$admin
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /u/{id}
    calls: [{ name: user, backend: svc, path: "/users/{id}" }]
  - path: /slow
    calls: [{ name: s, backend: svc, path: "/slow" }]
EOF

# Writes $bytes in pieces (the server may close midway), then reads frames until the connection ends.
# Returns the list of [type, flags, stream, payload] received, and whether the connection closed.
sub flood_and_read {
    my ($s, $bytes, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    my ($in, $closed) = ('');
    my $sel = IO::Select->new($s);
    while (length $bytes && time < $deadline) {
        my $n = syswrite($s, substr($bytes, 0, 16384));
        last unless $n;
        substr($bytes, 0, $n) = '';
        while ($s->pending || $sel->can_read(0)) { # keep reading so that neither side blocks
            my $r = sysread($s, my $buf, 65536);
            if (!$r) { $closed = 1; last }
            $in .= $buf;
        }
        last if $closed;
    }
    while (!$closed && time < $deadline && ($s->pending || $sel->can_read($deadline - time))) {
        my $r = sysread($s, my $buf, 65536);
        if (!$r) { $closed = 1; last }
        $in .= $buf;
    }
    return ([h2_parse(\$in)], $closed);
}

subtest 'HTTP/2 answers on the h2 listener' => sub {
    my $s = h2_connect($port);
    my ($frames) = flood_and_read($s, h2_get(1, '/u/5') . h2_frame(7, 0, 0, pack('NN', 1, 0)), 5);
    my ($data) = grep { $_->[0] == 0 && $_->[2] == 1 } @$frames;
    ok($data, 'a DATA frame on stream 1') or diag explain $frames;
    like($data->[3] // '', qr/"id":"5"/, 'with the answer');
};

subtest 'Rapid Reset: GOAWAY, and every upstream exchange it started is cancelled' => sub {
    $mock->reset;
    my $s = h2_connect($port);
    my $flood = '';
    for my $i (0 .. 1999) {
        my $id = 2 * $i + 1;
        $flood .= h2_get($id, '/slow') . h2_frame(3, 0, $id, pack('N', 8)); # HEADERS then RST_STREAM(CANCEL)
    }
    my $t0 = time;
    my ($frames, $closed) = flood_and_read($s, $flood, 10);
    is(h2_goaway_code($frames), 11, 'GOAWAY with ENHANCE_YOUR_CALM');
    ok($closed, 'and the connection is closed');
    cmp_ok(time - $t0, '<', 5, 'within seconds');
    is($gw->metric('conflux_http2_goaway_total{reason="rapid_reset"}'), 1, 'counted in metrics');
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }), 'no request is left in flight');
    my $j = $mock->journal;
    cmp_ok(scalar(@$j), '<=', 250, 'at most ~200 streams reached the upstream before the GOAWAY (' . scalar(@$j) . ')');
    # every one, but for at most one: when the read that crosses the bound ends between a HEADERS and its RST_STREAM,
    # that stream was never reset, and the GOAWAY (its last-stream-id covers it) promises to finish it (RFC 9113 6.8)
    my $left;
    ok(wait_until(sub {
        my $j = $mock->journal;
        $left = grep { !$_->{aborted} } @$j;
        $left <= 1;
    }), "and every one of them was aborted by conflux (the mock saw the client go), but at most one ($left)")
        or diag explain [grep { !$_->{aborted} } @{ $mock->journal }];
};

subtest 'a stream reset after its calls started cancels them' => sub {
    $mock->reset;
    my $s = h2_connect($port);
    syswrite($s, join '', map { h2_get($_, '/slow') } 1, 3, 5);
    ok(wait_until(sub { @{ $mock->journal } == 3 }), 'three upstream requests are out');
    syswrite($s, join '', map { h2_frame(3, 0, $_, pack('N', 8)) } 1, 3, 5);
    ok(wait_until(sub { my $j = $mock->journal; @$j == 3 && !grep { !$_->{aborted} } @$j }, 2),
       'the client resets them: all three upstream exchanges are aborted at once (well before the 3 s answer)');
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }), 'no request is left in flight');
    close $s;
};

# libh2o decrypts what came with the client's last handshake record before conflux sees the connection, so a flood
# sent right after the handshake can be in the first bytes already (bench/soak found it under load, where it happens
# by itself). To make it certain, the client's TLS runs through memory BIOs: its Finished (TLS 1.3) is held back and
# goes out in one write() with the flood, which conflux reads at once.
subtest 'a flood in the bytes that arrive with the end of the TLS handshake gets GOAWAY too' => sub {
    $mock->reset;
    my $before = $gw->metric('conflux_http2_goaway_total{reason="rapid_reset"}');
    my $tcp = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die "connect: $!";
    my $ctx = Net::SSLeay::CTX_new() or die;
    Net::SSLeay::CTX_set_min_proto_version($ctx, Net::SSLeay::TLS1_3_VERSION());
    Net::SSLeay::CTX_set_alpn_protos($ctx, ['h2']);
    my $ssl = Net::SSLeay::new($ctx);
    my ($rbio, $wbio) = (Net::SSLeay::BIO_new(Net::SSLeay::BIO_s_mem()), Net::SSLeay::BIO_new(Net::SSLeay::BIO_s_mem()));
    Net::SSLeay::set_bio($ssl, $rbio, $wbio);
    Net::SSLeay::set_connect_state($ssl);
    my $pending = sub { my $out = ''; while (Net::SSLeay::BIO_pending($wbio)) { $out .= Net::SSLeay::BIO_read($wbio) } $out };
    Net::SSLeay::connect($ssl);                       # ClientHello into the BIO
    syswrite($tcp, $pending->());
    my $sel = IO::Select->new($tcp);
    my $done = 0;
    while (!$done && $sel->can_read(5)) {            # conflux's flight, until the client's side is done
        sysread($tcp, my $buf, 65536) or last;
        Net::SSLeay::BIO_write($rbio, $buf);
        $done = Net::SSLeay::connect($ssl) == 1;
    }
    ok($done, 'the client finished its handshake (its Finished not sent yet)');
    is(Net::SSLeay::P_alpn_selected($ssl), 'h2', 'ALPN chose h2');
    my $flood = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . h2_frame(4, 0, 0, '');
    $flood .= h2_get(2 * $_ + 1, '/slow') . h2_frame(3, 0, 2 * $_ + 1, pack('N', 8)) for 0 .. 299; # ~14 KB
    Net::SSLeay::write($ssl, $flood);
    my $bytes = $pending->();
    is(syswrite($tcp, $bytes), length $bytes, 'the Finished, the preface and 300 HEADERS + RST_STREAM in one write');
    my ($in, $closed) = ('', 0);
    while ($sel->can_read(10)) {
        my $n = sysread($tcp, my $buf, 65536);
        if (!$n) { $closed = 1; last }
        Net::SSLeay::BIO_write($rbio, $buf);
        while (defined(my $plain = Net::SSLeay::read($ssl))) { last unless length $plain; $in .= $plain }
    }
    my @frames = h2_parse(\$in);
    my @types = map { $_->[0] } @frames;
    is($types[0], 4, "h2o's SETTINGS first (the server preface, RFC 9113 §3.4)") or diag "frames: @types";
    ok((grep { $_ == 7 } @types), 'then GOAWAY') or diag "frames: @types";
    is(h2_goaway_code(\@frames), 11, 'with ENHANCE_YOUR_CALM');
    ok($closed, 'and the connection is closed');
    is($gw->metric('conflux_http2_goaway_total{reason="rapid_reset"}'), $before + 1, 'counted in metrics');
    # the streams before the 200th reset are within the bound: libh2o runs them and the client's resets cancel them,
    # but for the last, whose RST_STREAM came after the bound and was dropped: GOAWAY names it, and it is answered
    my $j;
    ok(wait_until(sub {
        $j = $mock->journal;
        @$j <= 200 && (grep { !$_->{aborted} && defined $_->{answered_at} } @$j) + (grep { $_->{aborted} } @$j) == @$j;
    }), 'at most 200 upstream requests went out') or diag explain $j;
    cmp_ok(scalar(grep { !$_->{aborted} } @$j), '<=', 1, 'all aborted by the resets, but the one GOAWAY still owes');
    Net::SSLeay::free($ssl);
    Net::SSLeay::CTX_free($ctx);
};

subtest 'a flood of PINGs gets GOAWAY too' => sub {
    my $s = h2_connect($port);
    my $flood = join '', map { h2_frame(6, 0, 0, pack('NN', 0, $_)) } 1 .. 3000;
    my ($frames, $closed) = flood_and_read($s, $flood, 10);
    is(h2_goaway_code($frames), 11, 'GOAWAY with ENHANCE_YOUR_CALM');
    ok($closed, 'and the connection is closed');
    is($gw->metric('conflux_http2_goaway_total{reason="frame_flood"}'), 1, 'counted in metrics');
};

subtest 'other clients are served during a flood' => sub {
    my $attacker = background(sub { # floods on new connections for ~3 s
        my $end = time + 3;
        while (time < $end) {
            my $s = eval { h2_connect($port) } or next;
            flood_and_read($s, join('', map { h2_get(2 * $_ + 1, '/slow') . h2_frame(3, 0, 2 * $_ + 1, pack('N', 8)) } 0 .. 999), 3);
        }
        return 1;
    });
    my @slow;
    for (1 .. 20) {
        my $r = run_cmd(['curl', '-sk', '--http2', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', '--resolve',
                         "localhost:$port:127.0.0.1", "https://localhost:$port/u/$_"]);
        my ($code, $t) = split ' ', $r->{out};
        push @slow, "$code $t" if ($code // '') ne '200' || $t > 1;
    }
    $attacker->wait;
    is_deeply(\@slow, [], 'all 20 requests answered 200 in under a second while the flood ran');
    cmp_ok($gw->metric('conflux_http2_goaway_total{reason="rapid_reset"}'), '>', 1, 'the flood connections got GOAWAY');
};

done_testing;
