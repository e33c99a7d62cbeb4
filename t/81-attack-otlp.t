# Attacks on span export (docs/operations.md, "Span export (OTLP)") as a hostile client, a hostile collector and a
# hostile config would make them: what a client sends stays valid, bounded JSON; a collector that blackholes costs
# requests nothing and does not hold the stop; the trace-flags conflux propagates are the ones it understands.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /a
    body: '{"a": 1}'
  - path: /v1/traces
    method: POST
    body: '{}'
EOF
my $m = $mock->port;

sub gateway {
    my ($tracing) = @_;
    my $admin = empty_port();
    return spawn_conflux(<<"EOF");
threads: 1
admin: 127.0.0.1:$admin
tracing: { $tracing }
backends: { api: { url: "http://127.0.0.1:$m" } }
routes:
  - path: "/users/{id}"
    calls: [{ name: a, backend: api, path: /a }]
EOF
}

my $tid = '4bf92f3577b34da6a3ce929d0e0e4736';
my $pid = '00f067aa0ba902b7';

# A collector of our own (the mock's journal keeps 4 KiB of a body): a child that takes each POST whole, writes its body
# to $dir/N.json and answers as `answer` says: 'ok' (200 {}), or a code ref given the socket. Returns ($port, $dir).
my @children;
END { local $?; kill "KILL", @children; waitpid($_, 0) for @children }
sub collector {
    my (%o) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64, ReuseAddr => 1) or die $!;
    my $dir = tmpdir() . '/collector-' . $l->sockport;
    mkdir $dir;
    my $pid = fork // die "fork: $!";
    if ($pid) { my $port = $l->sockport; close $l; push @children, $pid; return ($port, $dir) }
    my $n = 0;
    while (my $c = $l->accept) {
        my $in = '';
        while ($in !~ /\r\n\r\n/) { sysread($c, $in, 65536, length $in) or last }
        my ($head, $body) = split /\r\n\r\n/, $in, 2;
        my ($len) = ($head // '') =~ /^content-length:\s*(\d+)/mi;
        $body //= '';
        while (defined $len && length($body) < $len) { sysread($c, $body, 65536, length $body) or last }
        open my $fh, '>', "$dir/" . ++$n . '.json.tmp' or die;
        print $fh $body;
        close $fh;
        rename "$dir/$n.json.tmp", "$dir/$n.json";
        if (ref $o{answer}) { $o{answer}->($c, $n) }
        else { syswrite($c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}") }
        close $c;
    }
    CORE::exit(0);
}

# the batches a collector of ours got, decoded strictly (UTF-8 checked): (spans, failures)
sub collected {
    my ($dir) = @_;
    my (@spans, @bad);
    for my $f (glob "$dir/*.json") {
        my $doc = eval { JSON::PP->new->utf8->decode(slurp($f)) };
        if (!$doc) { push @bad, $@; next }
        for my $rs (@{ $doc->{resourceSpans} // [] }) {
            push @spans, @{ $_->{spans} // [] } for @{ $rs->{scopeSpans} // [] };
        }
    }
    return (\@spans, \@bad);
}

# every batch body the collector got, decoded strictly (UTF-8 checked): a list of [span, undef] and the raw failures
sub batches {
    my (@spans, @bad);
    for my $e (@{ $mock->journal('/v1/traces') }) {
        my $doc = eval { JSON::PP->new->utf8->decode($e->{body} // '') };
        if (!$doc) { push @bad, $@; next }
        for my $rs (@{ $doc->{resourceSpans} // [] }) {
            push @spans, @{ $_->{spans} // [] } for @{ $rs->{scopeSpans} // [] };
        }
    }
    return (\@spans, \@bad);
}

sub attrs {
    my ($span) = @_;
    return { map { $_->{key} => (values %{ $_->{value} })[0] } @{ $span->{attributes} // [] } };
}

# the traceparent flags the upstream saw on its latest request to /a
sub upstream_flags {
    my $j = $mock->journal('/a');
    my $v = @$j ? $j->[-1]{headers}{traceparent} // '' : '';
    return $v =~ /^00-[0-9a-f]{32}-[0-9a-f]{16}-([0-9a-f]{2})$/ ? $1 : '';
}

subtest 'hostile bytes in the path and method: the batch stays strict JSON, url.path bounded' => sub {
    my ($cp, $dir) = collector();
    my $gw = gateway("otlp: http://127.0.0.1:$cp/v1/traces, sample: 1, delay: 20ms");
    my $long = '/users/' . ('x' x 60000);
    my @req = (
        "GET /users/a%22b\\c\"d\x80\xff\xc3\x28\xed\xa0\x80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET $long HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /users/" . ("\xe2\x82" x 20000) . " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "X-'|^`~!#\$%&*+.Y /users/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ('M' x 5000) . " /users/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /users/" . ("\xc3\xa9" x 2000) . " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    my @st = map { raw_request($gw->port, $_)->{status} } @req;
    note "statuses: @st";
    my ($spans, $bad);
    # a request span (kind 2, SERVER) per request answered: the attempt spans of the first requests alone could reach
    # the count while the last request's spans are still in the exporter's next batch
    ok wait_until(sub {
        ($spans, $bad) = collected($dir);
        @$bad || (grep { $_->{kind} == 2 } @$spans) >= grep { $_ != 400 } @st
    }), 'the collector got them';
    is scalar(@$bad), 0, 'every batch is strict JSON (valid UTF-8)' or diag explain $bad;
    my ($e) = grep { (attrs($_)->{'url.path'} // '') =~ /^\/users\/\x{e9}/ } @$spans;
    is attrs($e // {})->{'url.path'}, '/users/' . ("\x{e9}" x 508), 'a long path is cut before a character, not in one';
    for my $s (@$spans) {
        my $a = attrs($s);
        ok length($a->{'url.path'} // '') <= 1024, 'url.path is at most 1 KiB' or diag length $a->{'url.path'};
        ok length($s->{name}) <= 300, 'the span name is bounded' or diag substr($s->{name}, 0, 80);
    }
    $gw->stop;
};

subtest 'trace-flags: only the sampled bit is propagated (W3C: other flags are set to zero)' => sub {
    $mock->reset;
    my $gw = gateway("sample: 0");
    for my $case (['ff', '01'], ['fe', '00'], ['03', '01'], ['01', '01'], ['00', '00']) {
        my ($in, $out) = @$case;
        http_get($gw->url('/users/1'), { traceparent => "00-$tid-$pid-$in" });
        is upstream_flags(), $out, "flags $in from the client: $out upstream";
    }
    $gw->stop;
};

subtest 'parent_based: false: a client\'s flag 01 no longer forces export; sample decides, the trace is continued' => sub {
    $mock->reset;
    my $gw = gateway("sample: 0, parent_based: false");
    http_get($gw->url('/users/1'), { traceparent => "00-$tid-$pid-01" });
    my $j = $mock->journal('/a');
    like $j->[-1]{headers}{traceparent} // '', qr/^00-$tid-[0-9a-f]{16}-00$/, 'sample 0: the client\'s 01 goes upstream as 00';
    $gw->stop;
    my ($cp, $dir) = collector();
    $gw = gateway("otlp: http://127.0.0.1:$cp/v1/traces, sample: 1, parent_based: false, delay: 20ms");
    http_get($gw->url('/users/1'), { traceparent => "00-$tid-$pid-00" });
    like $mock->journal('/a')->[-1]{headers}{traceparent} // '', qr/^00-$tid-[0-9a-f]{16}-01$/, 'sample 1: the client\'s 00 goes upstream as 01';
    my $spans;
    ok wait_until(sub { ($spans) = collected($dir); grep { $_->{kind} == 2 } @$spans }), 'and the request is exported';
    my ($server) = grep { $_->{kind} == 2 } @$spans;
    is $server->{parentSpanId} // '', $pid, 'as a child of the client\'s span';
    $gw->stop;
    $gw = gateway("sample: 0");
    http_get($gw->url('/users/1'), { traceparent => "00-$tid-$pid-01" });
    like $mock->journal('/a')->[-1]{headers}{traceparent} // '', qr/-01$/, 'the default stays parent-based (W3C)';
    $gw->stop;
};

subtest 'quotes, backslashes and control bytes in tracestate and service_name are escaped' => sub {
    my ($cp, $dir) = collector();
    my $gw = gateway(qq{otlp: http://127.0.0.1:$cp/v1/traces, sample: 1, delay: 1ms, service_name: "e\\"d\\\\g\\x01\\te\\u00e9"});
    my $state = 'a=x"y\\z,b@c=' . ('q' x 200) . ',d=}{';
    is http_get($gw->url('/users/1'), { traceparent => "00-$tid-$pid-01", tracestate => $state })->{status}, 200, 'answered';
    my ($spans, $bad);
    ok wait_until(sub { ($spans, $bad) = collected($dir); @$bad || grep { $_->{kind} == 2 } @$spans }), 'exported';
    is scalar(@$bad), 0, 'strict JSON' or diag explain $bad;
    my ($server) = grep { $_->{kind} == 2 } @$spans;
    is $server->{traceState}, $state, 'traceState: the client\'s value, quotes and backslashes intact';
    my ($f) = glob "$dir/*.json";
    my $doc = JSON::PP->new->utf8->decode(slurp($f));
    is $doc->{resourceSpans}[0]{resource}{attributes}[0]{value}{stringValue}, "e\"d\\g\x01\te\x{e9}", 'service.name as configured';
    $gw->stop;
};

subtest 'the access log with a blackholed collector and a full span queue: every line written, reopened on SIGHUP' => sub {
    my $bh = blackhole();
    my $p = $bh->sockport;
    my $log = tmpdir() . "/access-otlp-$p.log";
    my $admin = empty_port();
    my $gw = spawn_conflux(<<"EOF2");
threads: 2
admin: 127.0.0.1:$admin
access_log: $log
tracing: { otlp: http://127.0.0.1:$p/v1/traces, sample: 1, delay: 1ms, batch: 1, queue: 2, timeout: 60s }
backends: { api: { url: "http://127.0.0.1:$m" } }
routes:
  - path: "/users/{id}"
    calls: [{ name: a, backend: api, path: /a }]
EOF2
    my $lines = sub { my ($f) = @_; -e $f ? scalar(() = slurp($f) =~ /\n/g) : 0 };
    my ($res) = http_parallel(30, $gw->url('/users/1'));
    is scalar(grep { $_->{status} == 200 } @$res), 30, '30 requests answered';
    ok wait_until(sub { $lines->($log) >= 30 }), 'each has its access-log line though spans are dropped';
    ok $gw->metric('conflux_trace_spans_total{result="dropped"}') > 0, 'spans dropped';
    rename $log, "$log.1" or die;
    $gw->signal('HUP');
    ok wait_until(sub { $gw->log_text =~ /conflux: reloaded / }), 'reloaded';
    ($res) = http_parallel(10, $gw->url('/users/2'));
    ok wait_until(sub { $lines->($log) >= 10 }), 'the reopened log gets the next lines';
    my $t0 = time;
    $gw->stop(timeout => 10);
    ok time - $t0 < 6, 'the stop is bounded';
};

subtest 'an https collector with a certificate no CA signed: nothing is sent, the failure is counted' => sub {
    my ($cert, $key) = self_signed_cert() or plan skip_all => 'no openssl to make a certificate';
    require IO::Socket::SSL;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 8, ReuseAddr => 1) or die $!;
    my $port = $l->sockport;
    my $flag = tmpdir() . "/tls-body-$port";
    my $child = fork // die;
    if (!$child) { # a TLS collector that would take a batch if the handshake succeeded
        while (my $c = $l->accept) {
            IO::Socket::SSL->start_SSL($c, SSL_server => 1, SSL_cert_file => $cert, SSL_key_file => $key) or next;
            my $in = '';
            sysread($c, $in, 65536);
            write_file($flag, $in) if length $in;
            syswrite($c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
            close $c;
        }
        CORE::exit(0);
    }
    push @children, $child;
    close $l;
    my $gw = gateway("otlp: https://127.0.0.1:$port/v1/traces, sample: 1, delay: 1ms, batch: 1, timeout: 2s");
    is http_get($gw->url('/users/1'))->{status}, 200, 'answered';
    ok wait_until(sub { $gw->metric('conflux_trace_spans_total{result="failed"}') >= 2 }), 'the batch failed';
    like $gw->log_text, qr/tracing\.otlp .*certificate verify failed/, 'because the certificate is not trusted';
    ok !-e $flag, 'no span went over the untrusted connection';
    is $gw->metric('conflux_trace_spans_total{result="exported"}'), 0, 'none counted exported';
    $gw->stop;
};

# HPACK integer with a 7-bit prefix, the H bit clear (RFC 7541 5.1)
sub hpack_len {
    my ($n) = @_;
    return chr($n) if $n < 127;
    my $out = chr(127);
    $n -= 127;
    while ($n >= 128) { $out .= chr(0x80 | ($n & 0x7f)); $n >>= 7 }
    return $out . chr($n);
}

subtest 'an HTTP/2 :method of 8 KiB: its span\'s name and attributes stay bounded' => sub {
    my ($cert, $key) = self_signed_cert() or plan skip_all => 'no openssl to make a certificate';
    my ($cp, $dir) = collector();
    my ($port, $admin) = (empty_port(), empty_port());
    my $gw = spawn_conflux(<<"EOF2", port => $port);
listen:
  - host: 127.0.0.1
    port: $port
    tls: { certificate: $cert, key: $key }
    http2: true
admin: 127.0.0.1:$admin
threads: 1
tracing: { otlp: http://127.0.0.1:$cp/v1/traces, sample: 1, delay: 1ms }
backends: { api: { url: "http://127.0.0.1:$m" } }
routes:
  - path: "/users/{id}"
    calls: [{ name: a, backend: api, path: /a }]
EOF2
    my $method = 'X' x 8192;
    my $block = "\x02" . hpack_len(length $method) . $method . "\x87\x04\x08/users/1\x01\x09localhost";
    my $s = h2_connect($port);
    my $first = 1;
    while (length $block) { # HEADERS then CONTINUATION, 16 KiB each at most
        my $chunk = substr($block, 0, 16384, '');
        syswrite($s, h2_frame($first ? 1 : 9, (length $block ? 0 : 0x4) | ($first ? 0x1 : 0), 1, $chunk));
        $first = 0;
    }
    my $spans;
    if (wait_until(sub { ($spans) = collected($dir); @$spans }, 5)) {
        for my $sp (@$spans) {
            ok length($sp->{name}) <= 300, 'the span name is bounded' or diag length $sp->{name};
            ok length(attrs($sp)->{'http.request.method'} // '') <= 64, 'http.request.method is bounded';
        }
        my ($server) = grep { $_->{kind} == 2 } @$spans;
        is $server->{name}, 'HTTP /users/{id}', 'an unknown method: the span is named HTTP (OpenTelemetry\'s conventions)';
        is attrs($server)->{'http.request.method'}, '_OTHER', 'http.request.method: _OTHER';
        is attrs($server)->{'http.request.method_original'}, 'X' x 64, 'http.request.method_original: its first 64 bytes';
    } else {
        pass 'the request was not traced';
    }
    close $s;
    is http_get("http://127.0.0.1:$admin/healthz")->{status}, 200, 'conflux is still up';
    $gw->stop;
};

# A collector that accepts connections and never reads nor answers.
sub blackhole {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 128, ReuseAddr => 1) or die $!;
    return $l;
}

subtest 'a blackholed collector: requests stay fast, drops are counted, the stop is bounded' => sub {
    my $bh = blackhole();
    my $p = $bh->sockport;
    my $gw = gateway("otlp: http://127.0.0.1:$p/v1/traces, sample: 1, delay: 1ms, batch: 1, queue: 4, timeout: 60s");
    my $before = $gw->metrics;
    my $worst = 0;
    for (1 .. 40) {
        my $r = http_get($gw->url('/users/1'));
        $worst = $r->{elapsed} if $r->{elapsed} > $worst;
    }
    ok $worst < 1, "no request waits on the collector (worst ${worst}s)";
    ok wait_until(sub { delta($before, $gw->metrics, 'conflux_trace_spans_total{result="dropped"}') > 0 }),
        'spans past the queue are dropped and counted';
    my $t0 = time;
    $gw->stop(timeout => 8);
    ok time - $t0 < 6, sprintf('the stop is bounded though a POST hangs (%.1fs)', time - $t0);
};

subtest 'reloads while spans are queued and a POST hangs: URL, batch, sample changed, tracing removed, https to a blackhole' => sub {
    my $bh = blackhole();
    my $p = $bh->sockport;
    my ($cp, $dir) = collector();
    my $admin = empty_port();
    my $head = "threads: 2\nadmin: 127.0.0.1:$admin\nbackends: { api: { url: \"http://127.0.0.1:$m\" } }\n"
        . "routes:\n  - path: \"/users/{id}\"\n    calls: [{ name: a, backend: api, path: /a }]\n";
    my $gw = spawn_conflux("tracing: { otlp: http://127.0.0.1:$p/v1/traces, sample: 1, delay: 1ms, batch: 8, queue: 64, timeout: 3s }\n$head");
    my $reloads = 0;
    my $reload = sub {
        my ($tracing) = @_;
        my $yaml = CfTest::slurp($gw->{config});
        $yaml =~ s/^tracing:.*\n//m;
        write_file($gw->{config}, ($tracing ? "tracing: { $tracing }\n" : '') . $yaml);
        $gw->signal('HUP');
        ++$reloads;
        return wait_until(sub { (() = $gw->log_text =~ /conflux: reloaded /g) >= $reloads });
    };
    my ($res) = http_parallel(40, $gw->url('/users/1'));
    is scalar(grep { $_->{status} == 200 } @$res), 40, 'sampled traffic on 2 threads, the collector blackholed';
    ok $reload->("otlp: http://127.0.0.1:$cp/v1/traces, sample: 0.5, batch: 3, delay: 1ms, timeout: 1s"), 'reloaded to a good collector';
    ($res) = http_parallel(40, $gw->url('/users/2'));
    is scalar(grep { $_->{status} == 200 } @$res), 40, 'traffic after it';
    ok wait_until(sub { my ($s) = collected($dir); @$s > 0 }), 'spans reach the new collector';
    ok $reload->(''), 'tracing removed';
    ($res) = http_parallel(20, $gw->url('/users/3'), headers => { traceparent => "00-$tid-$pid-01" });
    is scalar(grep { $_->{status} == 200 } @$res), 20, 'traffic without it';
    ok $reload->("otlp: https://127.0.0.1:$p/v1/traces, sample: 1, delay: 1ms, batch: 1, timeout: 60s"), 'https to the blackhole';
    ($res) = http_parallel(20, $gw->url('/users/4'));
    is scalar(grep { $_->{status} == 200 } @$res), 20, 'traffic with a TLS handshake hanging';
    ok wait_until(sub { $gw->metric('conflux_trace_spans_total{result="dropped"}') > 0 }), 'drops counted';
    my $t0 = time;
    $gw->stop(timeout => 10);
    ok time - $t0 < 6, sprintf('the stop is bounded (%.1fs)', time - $t0);
};

sub rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return 0;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}

subtest 'a hostile collector: huge, trickling, garbage, redirect and error answers are failures, bounded in time and memory' => sub {
    local $SIG{PIPE} = 'IGNORE';
    my @answers = (
        sub { # 100 MB of answer
            syswrite($_[0], "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n");
            my $mb = 'x' x (1 << 20);
            for (1 .. 100) { defined syswrite($_[0], $mb) or last }
        },
        sub { # a byte at a time, past the timeout
            for my $b (split //, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") {
                defined syswrite($_[0], $b) or last;
                select undef, undef, undef, 0.1;
            }
        },
        sub { syswrite($_[0], "\x00\xffGARBAGE\r\n\r\n" x 100) },
        sub { syswrite($_[0], "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n") },
        sub { syswrite($_[0], "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n") },
        sub { syswrite($_[0], "HTTP/1.1 429 Slow Down\r\nRetry-After: 3600\r\nContent-Length: 0\r\n\r\n") },
        sub { syswrite($_[0], "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n") },
        sub { syswrite($_[0], "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" . ("ffffffffffffffffff\r\n")) },
        sub { syswrite($_[0], "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") },
    );
    my ($cp, $dir) = collector(answer => sub { my ($c, $n) = @_; ($answers[$n - 1] // $answers[-1])->($c) });
    my $gw = gateway("otlp: http://127.0.0.1:$cp/v1/traces, sample: 1, delay: 1ms, batch: 1, timeout: 500ms");
    my $rss0 = rss_kb($gw->pid);
    my $before = $gw->metrics;
    my $worst = 0;
    for my $i (1 .. @answers) {
        my $r = http_get($gw->url('/users/1'));
        $worst = $r->{elapsed} if $r->{elapsed} > $worst;
        ok wait_until(sub { my $a = $gw->metrics; delta($before, $a, 'conflux_trace_spans_total{result="failed"}') +
                            delta($before, $a, 'conflux_trace_spans_total{result="exported"}') >= 2 * $i }),
            "answer $i: the batch is settled" or last;
    }
    my $after = $gw->metrics;
    is delta($before, $after, 'conflux_trace_spans_total{result="failed"}'), 2 * (@answers - 1), 'every bad answer is a failure';
    is delta($before, $after, 'conflux_trace_spans_total{result="exported"}'), 2, 'and the good one an export';
    ok $worst < 0.5, "no request waited on the collector (worst ${worst}s)";
    my $grown = rss_kb($gw->pid) - $rss0;
    ok $grown < 32 * 1024, "memory stays bounded after a 100 MB answer (+${grown} KiB)";
    $gw->stop;
};

done_testing;
