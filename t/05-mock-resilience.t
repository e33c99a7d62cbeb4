# conflux-mock for resilience tests: several listeners in one process (each a server), stubs for one listener,
# statuses for a fraction of requests, latency distributions under a seed, and client aborts by listener.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Socket::INET;
use JSON::PP;
use Test::More;

my $bin = bindir() . '/conflux-mock';
my ($pa, $pb) = (empty_port(), empty_port());
my $mock = spawn(name => 'mock-ab', class => 'CfTest::Mock', port => $pb,
                 cmd => [$bin, '-c', write_file(tmpdir() . "/mock-ab-$$.yaml", <<"EOF")]);
listen: { a: 127.0.0.1:$pa, b: 127.0.0.1:$pb }
stubs:
  - path: /item/{id}
    body: '{"id": "{id}"}'
  - path: /item/{id}
    listener: b
    status: 503
    body: '{"error": "b is down"}'
  - path: /slow
    delay: 5s
  - path: /flaky
    fault: 503
    fault_rate: 0.25
  - path: /down
    fault: 503
EOF

sub url { my ($port, $path) = @_; return "http://127.0.0.1:$port$path" }
sub admin_json { my ($path) = @_; return decode_json(http_get(url($pa, $path))->{body}) }

subtest 'two listeners, one process: each request journaled with its listener' => sub {
    $mock->reset;
    my $ra = http_get(url($pa, '/item/1'));
    is $ra->{status}, 200, 'listener a: the stub for every listener';
    is $ra->{body}, '{"id": "1"}', 'its body';
    my $rb = http_get(url($pb, '/item/1'));
    is $rb->{status}, 503, 'listener b: its own stub beats the one for every listener';
    is $rb->{body}, '{"error": "b is down"}', 'its body';
    http_get(url($pb, '/item/2'));

    my $j = $mock->journal;
    is_deeply [map { $_->{listener} } @$j], [qw(a b b)], 'the journal names the listener of each request';
    is_deeply [map { $_->{stub} } @$j], ['GET /item/{id}', 'GET /item/{id} @b', 'GET /item/{id} @b'],
        'a stub for one listener has a key of its own';
    is scalar @{ admin_json('/__mock/requests?listener=b') }, 2, '?listener=b: the requests of b only';
    my $s = $mock->stats;
    is $s->{total}, 3, 'stats: every listener';
    is $s->{listeners}{a}{total}, 1, 'stats of a';
    is $s->{listeners}{b}{total}, 2, 'stats of b';
    is $s->{stubs}{'GET /item/{id} @b'}, 2, 'stats by stub';
    my ($listed) = grep { $_->{key} eq 'GET /item/{id} @b' } @{ admin_json('/__mock/stubs') };
    is $listed->{listener}, 'b', 'GET /__mock/stubs shows the listener';
};

subtest 'a stub for one listener at runtime' => sub {
    my $r = http_request('POST', url($pa, '/__mock/stubs'), {}, '{"path": "/late", "listener": "a", "body": "a only"}');
    is $r->{status}, 200, 'accepted' or diag $r->{body};
    is http_get(url($pa, '/late'))->{body}, 'a only', 'answers on a';
    is http_get(url($pb, '/late'))->{status}, 404, 'not on b';
    $r = http_request('POST', url($pa, '/__mock/stubs'), {}, '{"path": "/late", "listener": "c"}');
    is $r->{status}, 400, 'a listener that does not exist is refused';
    like $r->{body}, qr/no listener is named \\"c\\" \(listeners: a, b\)/, 'and the error names the listeners';
};

subtest 'a status for a fraction of requests: transient failures' => sub {
    $mock->reset;
    my @st = map { http_get(url($pa, '/flaky'))->{status} } 1 .. 200;
    my $failed = grep { $_ == 503 } @st;
    cmp_ok $failed, '>=', 25, "fault: 503, fault_rate: 0.25: $failed of 200 got 503, not far below 50";
    cmp_ok $failed, '<=', 80, 'not far above';
    is $failed + (grep { $_ == 200 } @st), 200, 'the others got the stub status';
    is scalar(grep { $_->{status} == 503 } @{ $mock->journal('/flaky') }), $failed, 'the journal has the statuses sent';
    is http_get(url($pa, '/down'))->{status}, 503, 'without fault_rate: every request';
    my ($listed) = grep { $_->{key} eq 'GET /down' } @{ admin_json('/__mock/stubs') };
    is $listed->{fault}, 503, 'GET /__mock/stubs shows the status as the fault';
};

subtest 'client aborts are counted by listener' => sub {
    $mock->reset;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pb, Timeout => 5) or die "connect: $!";
    print $s "GET /slow HTTP/1.1\r\nHost: b\r\n\r\n";
    ok wait_until(sub { @{ $mock->journal('/slow') } == 1 }, 5), 'the request waits in its delay';
    close $s;
    ok wait_until(sub { ($mock->stats->{listeners}{b}{aborted} // 0) == 1 }, 5), 'stats: aborted on b';
    my $e = $mock->journal('/slow')->[0];
    ok $e->{aborted}, 'the journal: aborted';
    is $e->{listener}, 'b', 'on listener b';
    is $mock->stats->{listeners}{a}{aborted}, 0, 'none on a';
    is $mock->stats->{aborted}, 1, 'one in all';
};

subtest 'a listener goes down and comes back: refused, waiting requests and open connections reset' => sub {
    $mock->reset;
    my $waiting = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pb, Timeout => 5) or die "connect: $!";
    print $waiting "GET /slow HTTP/1.1\r\nHost: b\r\n\r\n";
    my $idle = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pb, Timeout => 5) or die "connect: $!";
    print $idle "GET /item/1 HTTP/1.1\r\nHost: b\r\n\r\n";
    sysread($idle, my $first, 4096);
    like $first, qr{^HTTP/1.1 503}, 'a keep-alive connection to b, answered';
    ok wait_until(sub { @{ $mock->journal('/slow') } == 1 }, 5), 'a request waits on b';

    my $r = http_request('POST', url($pa, '/__mock/down?listener=b'));
    is $r->{status}, 200, 'POST /__mock/down?listener=b' or diag $r->{body};
    my $n = sysread($waiting, my $buf, 4096);
    ok !$n, 'the waiting request: the connection reset, no answer';
    is admin_json('/__mock/requests?path=/slow')->[0]{fault}, 'reset', 'journaled as reset';    # b is down: ask a
    ok !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pb, Timeout => 2), 'a new connection to b is refused';
    print $idle "GET /item/1 HTTP/1.1\r\nHost: b\r\n\r\n";
    $n = sysread($idle, $buf, 4096);
    ok !$n, 'a request on a connection from before: reset, no answer';
    is scalar @{ admin_json('/__mock/requests?listener=b') }, 2, 'and not journaled: a dead server sees nothing';
    is_deeply [map { [$_->{name}, $_->{up} ? 1 : 0] } @{ admin_json('/__mock/listeners') }], [[a => 1], [b => 0]],
        'GET /__mock/listeners: b is down';
    is http_get(url($pa, '/item/1'))->{status}, 200, 'a still answers';

    is http_request('POST', url($pa, '/__mock/up?listener=b'))->{status}, 200, 'POST /__mock/up?listener=b';
    is http_get(url($pb, '/item/1'))->{status}, 503, 'b answers again, on the same port';
    is http_request('POST', url($pa, '/__mock/down?listener=c'))->{status}, 404, 'an unknown listener: 404';
};

# A mock on free ports from the command line; returns the guard and its ports in order.
sub spawn_cli {
    my (@args) = @_;
    my $n = grep { $_ eq '--port' } @args;
    my $g = spawn(name => 'mock-cli', class => 'CfTest::Mock', cmd => [$bin, @args],
                  ready => qr/^listening on \S+:(\d+)\n(?:listening on \S+\n){${\($n - 1)}}/m);
    my @ports = $g->log_text =~ /^listening on \S+:(\d+)$/mg;
    return ($g, @ports);
}

subtest '--port is repeatable; listeners are named, or named after their address' => sub {
    my ($g, @ports) = spawn_cli('--port', 'one=0', '--port', '0', '--stub', 'GET /x 200 one listener=one');
    is scalar @ports, 2, 'two listeners';
    is http_get(url($ports[0], '/x'))->{body}, 'one', 'the stub of "one" on the first';
    is http_get(url($ports[1], '/x'))->{status}, 404, 'not on the second';
    my $s = decode_json(http_get(url($ports[1], '/__mock/stats'))->{body});
    is_deeply [sort keys %{ $s->{listeners} }], [sort 'one', "127.0.0.1:$ports[1]"], 'an unnamed listener has its address as name';
    $g->stop;

    my $r = run_cmd([$bin, '--port', '0', '--stub', 'GET /x 200 x listener=nope']);
    is $r->{code}, 1, 'a stub for no listener: exit 1';
    like $r->{err}, qr/no listener is named "nope"/, 'says which';
    unlike $r->{out}, qr/listening on/, 'and never says it listens';
    $r = run_cmd([$bin, '--port', 'a=0', '--port', 'a=0']);
    is $r->{code}, 1, 'two listeners with one name: exit 1';
    like $r->{err}, qr/two listeners are named "a"/, 'says so';
};

subtest 'lognormal delays: the distribution, the same under the same --seed' => sub {
    # 300 requests at once; the delay each one drew is journaled on arrival, so the client need not wait them out
    my @drawn;
    for my $seed (42, 42, 43) {
        my ($g, $port) = spawn_cli('--port', '0', '--seed', $seed, '--stub', 'GET /ln 200 ok delay=lognormal:20ms:1s');
        system('curl', '-s', '--no-progress-meter', '--parallel', '--parallel-immediate', '--parallel-max', '300', '--max-time', '1',
               ('-o', '/dev/null', '--url', url($port, '/ln')) x 300);
        ok wait_until(sub { @{ $g->journal('/ln') } == 300 }, 10), "seed $seed: 300 requests journaled";
        push @drawn, [sort { $a <=> $b } map { $_->{delay_ms} } @{ $g->journal('/ln') }];
        $g->stop;
    }
    is_deeply $drawn[1], $drawn[0], 'the same seed: the same delays';
    ok "@{$drawn[2]}" ne "@{$drawn[0]}", 'another seed: other delays';
    my @d = @{ $drawn[0] };
    cmp_ok $d[150], '>=', 12, "median 20ms: the median drawn, $d[150] ms, is not far below";
    cmp_ok $d[150], '<=', 32, 'nor far above';
    my $over_p90 = grep { $_ > 172 } @d;    # 20ms * e^(1.2816 * ln(50) / 2.3263)
    cmp_ok $over_p90, '>=', 12, "above the p90 (172 ms): $over_p90 of 300, not far below 30";
    cmp_ok $over_p90, '<=', 50, 'nor far above';
    my $over_p99 = grep { $_ > 1000 } @d;
    cmp_ok $over_p99, '<=', 10, "above the p99 (1 s): $over_p99 of 300, about 3";
};

subtest 'each stub draws from its own stream: the same delays whatever else is asked, and again after a reset' => sub {
    my @stubs = ('--stub', 'GET /x 200 x delay=lognormal:2ms:20ms', '--stub', 'GET /y 200 y delay=lognormal:2ms:20ms fault=503 fault_rate=0.5');
    my ($g1, $p1) = spawn_cli('--port', '0', '--seed', 7, @stubs);
    my ($g2, $p2) = spawn_cli('--port', '0', '--seed', 7, @stubs);
    my $draws = sub {
        my ($g) = @_;
        return join ' ', map { $_->{delay_ms} } @{ $g->journal('/x') };
    };
    http_get(url($p1, $_)) for qw(/x /x /x /x /x /x);
    http_get(url($p2, $_)) for qw(/y /x /y /y /x /x /y /x /x /x);
    my $first = $draws->($g1);
    is $draws->($g2), $first, "the same seed: /x draws $first, however many /y come between";
    $g1->reset;
    http_get(url($p1, '/x')) for 1 .. 6;
    is $draws->($g1), $first, 'after a reset: the same draws again';
    $g1->stop;
    $g2->stop;
};

done_testing;
