# HTTP/2 attacks that get past the reset and idle-frame limits: HPACK references that multiply a small header block
# into a large request, padded frames that carry nothing, streams the server resets itself (MadeYouReset,
# CVE-2025-8671), streams left unfinished after conflux's own GOAWAY, and streams whose answer never leaves because
# the client opened no flow-control window. Raw frames over TLS with ALPN h2.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Select;
use Test::More;
use Time::HiRes qw(time);

$SIG{PIPE} = 'IGNORE';

my ($cert, $key) = self_signed_cert() or die 'openssl could not make a certificate';
my $dir = tmpdir();
write_file("$dir/big.json", '{"a":"' . ('x' x (1024 * 1024)) . '"}');
my $mock = spawn_mock(<<"EOF");
stubs:
  - path: /users/{id}
    body: '{"id": "{id}"}'
  - path: /big
    body_file: $dir/big.json
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
limits: { max_inflight: 150, send_timeout: 2s }
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 5s }
routes:
  - path: /u/{id}
    calls: [{ name: user, backend: svc, path: "/users/{id}" }]
  - path: /slow
    calls: [{ name: s, backend: svc, path: "/slow" }]
  - path: /big
    calls: [{ name: b, backend: svc, path: "/big" }]
EOF

# IO::Socket::SSL writes at most one TLS record per call
sub write_all {
    my ($s, $bytes) = @_;
    while (length $bytes) {
        my $n = syswrite($s, $bytes);
        return 0 unless $n;
        substr($bytes, 0, $n) = '';
    }
    return 1;
}

# Reads for up to $wait seconds; appends the frames to @$frames. Returns 1 when the connection is closed.
sub read_frames {
    my ($s, $wait, $frames, $inref) = @_;
    my $sel = IO::Select->new($s);
    my $end = time + $wait;
    while ($s->pending || $sel->can_read(($end - time) > 0 ? $end - time : 0)) {
        my $r = sysread($s, my $buf, 65536);
        if (!$r) {
            return 1 if defined $r || !$!{EAGAIN};
            last;
        }
        $$inref .= $buf;
        last if time > $end;
    }
    push @$frames, h2_parse($inref);
    return 0;
}

sub rss_kib {
    open my $fh, '<', "/proc/" . $gw->pid . "/status" or return 0;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}

# HPACK: one 4000-byte header in the dynamic table, then a header block of one-byte references to it (0xbe: index
# 62). h2o 2.2.5 bounds the compressed block (H2O_MAX_REQLEN, 408 KiB) but not the number of decoded fields, and
# keeps each request's fields until its stream closes: with no window opened, that is never.
subtest 'HPACK references do not multiply a header block into hundreds of MiB' => sub {
    my $maxreq = 8192 + 4096 * 100;
    my $big = "\x40\x03x-a" . "\x7f" . pack('C2', 0x80 | ((4000 - 127) & 0x7f), (4000 - 127) >> 7) . ('a' x 4000);
    my $s = h2_connect($port, 4 => 0);
    my $before = rss_kib();
    my $streams = 5;
    for my $i (0 .. $streams - 1) {
        my $block = h2_header_block('/u/1') . ($i == 0 ? $big : '');
        $block .= "\xbe" x ($maxreq - length($block) - 16);
        my $first = 1;
        while (length $block) {
            my $chunk = substr($block, 0, 16384, '');
            my $flags = (length $block ? 0 : 0x4) | ($first ? 0x1 : 0);
            write_all($s, h2_frame($first ? 1 : 9, $flags, 2 * $i + 1, $chunk)) or last;
            $first = 0;
        }
    }
    my ($in, @frames) = ('');
    read_frames($s, 3, \@frames, \$in);
    note("frames back: " . join(" ", map { "$_->[0]/$_->[2]" } @frames));
    my $grown = (rss_kib() - $before) / 1024;
    my $sent = $streams * $maxreq / 1024 / 1024;
    cmp_ok($grown, '<', 64, sprintf('%.1f MiB of header blocks grow conflux by %.0f MiB', $sent, $grown));
    is(http_get("http://127.0.0.1:$admin/healthz")->{status}, 200, 'conflux is still up');
    close $s;
};

# The idle-frame limit looks at a frame's length; a PADDED frame that carries no data has length 1 (its Pad Length
# byte) and is not counted: the 2019 "empty frames" flood (CVE-2019-9518) with one byte of padding.
subtest 'DATA frames that carry nothing but a Pad Length byte count as empty frames' => sub {
    my $s = h2_connect($port);
    write_all($s, h2_frame(1, 0x4, 1, h2_header_block('/u/1'))); # END_HEADERS, a body to follow
    my ($in, @frames, $closed) = ('');
    my ($sent, $t0) = (0, time);
    while (time - $t0 < 2 && !$closed && !grep { $_->[0] == 7 } @frames) {
        write_all($s, h2_frame(0, 0x8, 1, "\0") x 500) or last;
        $sent += 500;
        $closed = read_frames($s, 0.01, \@frames, \$in);
    }
    is(h2_goaway_code(\@frames), 11, "GOAWAY (ENHANCE_YOUR_CALM) within 2 s ($sent sent)");
    close $s;
};

# One connection opens 100 streams at a time to a slow route, lets their calls start, then makes the server reset
# each of them with a frame that is a stream error in h2o 2.2.5 ($trigger), for ~3 s. The client itself never sends
# RST_STREAM, so the per-connection reset count never moves.
sub server_reset_flood {
    my ($trigger) = @_;
    $mock->reset;
    my $s = h2_connect($port);
    my ($in, @frames, $closed) = ('');
    my ($id, $streams, $t0) = (1, 0, time);
    while (time - $t0 < 3 && !$closed) {
        my @ids = map { $id + 2 * $_ } 0 .. 99;
        $id += 200;
        write_all($s, join '', map { h2_get($_, '/slow') } @ids) or last;
        $closed = read_frames($s, 0.02, \@frames, \$in);
        last if $closed || grep { $_->[0] == 7 } @frames;
        write_all($s, join '', map { $trigger->($_) } @ids) or last;
        $streams += 100;
        $closed = read_frames($s, 0.005, \@frames, \$in);
        last if grep { $_->[0] == 7 } @frames;
    }
    $closed ||= read_frames($s, 1, \@frames, \$in);
    my $elapsed = time - $t0;
    my $server_resets = grep { $_->[0] == 3 } @frames;
    close $s;
    # once conflux holds no request in flight, no upstream request of the flood can still go out: count them then
    my $settled = wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }, 10);
    return { goaway => h2_goaway_code(\@frames), streams => $streams, elapsed => $elapsed, settled => $settled,
             upstream => scalar @{ $mock->journal }, server_resets => $server_resets };
}

subtest 'streams reset by the server (WINDOW_UPDATE of 0 on each) count like client resets' => sub {
    my $r = server_reset_flood(sub { h2_frame(8, 0, $_[0], pack('N', 0)) });
    note(sprintf('%d streams in %.1f s, %d RST_STREAM from conflux, %d upstream requests', $r->{streams}, $r->{elapsed},
                 $r->{server_resets}, $r->{upstream}));
    is($r->{goaway}, 11, 'GOAWAY (ENHANCE_YOUR_CALM), as for RST_STREAM from the client');
    ok($r->{settled}, 'nothing left in flight');
    cmp_ok($r->{upstream}, '<=', 250, 'at most ~200 reset streams a second reach the upstream');
};

subtest 'streams reset by the server (DATA after END_STREAM on each) count like client resets' => sub {
    my $r = server_reset_flood(sub { h2_frame(0, 0x1, $_[0], 'x') });
    note(sprintf('%d streams in %.1f s, %d RST_STREAM from conflux, %d upstream requests', $r->{streams}, $r->{elapsed},
                 $r->{server_resets}, $r->{upstream}));
    is($r->{goaway}, 11, 'GOAWAY (ENHANCE_YOUR_CALM)');
    ok($r->{settled}, 'nothing left in flight');
    cmp_ok($r->{upstream}, '<=', 250, 'at most ~200 reset streams a second reach the upstream');
};

# conflux's GOAWAY (here for a PING flood) names the last stream it will still answer, but conflux then drops all
# the client's input, WINDOW_UPDATE included: an answer larger than the flow-control window can never finish, and
# the connection, which h2o closes only once its streams are done, stays open for ever.
subtest 'after conflux sends GOAWAY, the streams it still owes an answer finish (or the connection closes)' => sub {
    my $s = h2_connect($port);
    write_all($s, h2_get(1, '/big'));
    my ($in, @frames) = ('');
    read_frames($s, 1, \@frames, \$in);
    write_all($s, h2_frame(6, 0, 0, pack('NN', 0, 1)) x 1500);
    my $closed = read_frames($s, 1, \@frames, \$in);
    my ($goaway) = grep { $_->[0] == 7 } @frames;
    is($goaway ? unpack('N', $goaway->[3]) : undef, 1, 'GOAWAY names stream 1 as the last one it processes');
    my $t0 = time;
    while (!$closed && time - $t0 < 10) { # a well-behaved client: opens the windows for the rest of the answer
        write_all($s, h2_frame(8, 0, 0, pack('N', 10_000_000)) . h2_frame(8, 0, 1, pack('N', 10_000_000))) or last;
        $closed = read_frames($s, 0.5, \@frames, \$in);
        last if grep { $_->[0] == 0 && $_->[2] == 1 && ($_->[1] & 1) } @frames;
    }
    my $data = 0;
    $data += length $_->[3] for grep { $_->[0] == 0 && $_->[2] == 1 } @frames;
    my $ended = grep { $_->[0] == 0 && $_->[2] == 1 && ($_->[1] & 1) } @frames;
    ok($ended || $closed, sprintf('within 10 s stream 1 ends or the connection closes (got %d bytes of its ~1 MiB answer)', $data));
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }, 2), 'and its request is no longer in flight');
    close $s;
};

# A client that opens no window (SETTINGS_INITIAL_WINDOW_SIZE 0) and never sends WINDOW_UPDATE: conflux's answers are
# complete but h2o cannot send their DATA, so the streams stay open and their requests are never disposed. h2o 2.2.5
# has no send timeout, and its idle timeout only runs while no stream is open.
subtest 'streams whose answers never leave hold no slot, and their connections are shut down' => sub {
    my $before = $gw->metric('conflux_send_timeouts_total');
    my @conns = map { h2_connect($port, 4 => 0) } 1 .. 2;
    for my $s (@conns) {
        write_all($s, join '', map { h2_get(2 * $_ + 1, "/u/$_") } 0 .. 99);
    }
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }, 5),
       '200 streams with no window: once answered, they hold no in-flight slot (max_inflight: 150)');
    my $r = run_cmd(['curl', '-sk', '--http2', '-o', '/dev/null', '-w', '%{http_code}', '--resolve', "localhost:$port:127.0.0.1",
                     "https://localhost:$port/u/7"]);
    is($r->{out}, '200', 'a new client is served at once');
    ok(wait_until(sub { $gw->metric('conflux_send_timeouts_total') >= $before + 2 }, 10),
       'both stalled connections are shut down by the send timeout (2 s)');
    close $_ for @conns;
    ok(wait_until(sub { $gw->metric('conflux_inflight_requests') == 0 }), 'nothing left in flight');
};

done_testing;
