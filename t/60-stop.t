# SIGTERM/SIGINT: stop accepting, finish what was accepted (bounded by shutdown_timeout), /healthz 503, exit 0.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);

my $mock = spawn_mock(<<'EOF');
stubs:
  - path: /slow/{id}
    body: '{"id": "{id}"}'
    delay: 800ms
  - path: /hang
    body: '{}'
    delay: 5s
EOF
my $m = $mock->port;

sub conf {
    my ($extra) = @_;
    my $admin = empty_port();
    return (<<"EOF", $admin);
threads: 2
admin: 127.0.0.1:$admin
$extra
backends:
  svc: { url: "http://127.0.0.1:$m", timeout: 6s }
routes:
  - path: /s/{id}
    calls: [{ name: one, backend: svc, path: "/slow/{id}" }]
  - path: /hang
    calls: [{ name: one, backend: svc, path: "/hang" }]
EOF
}

# $n concurrent GETs from a child process: {status => count}
sub background_load {
    my ($n, $url) = @_;
    return background(sub {
        my ($res) = http_parallel($n, $url);
        my %c;
        $c{$_->{status}}++ for @$res;
        return \%c;
    });
}

subtest 'SIGTERM under load: every accepted request finishes, /healthz says draining, exit 0' => sub {
    my ($yaml, $admin) = conf('');
    my $gw = spawn_conflux($yaml);
    $mock->reset;
    my $load = background_load(40, $gw->url('/s/t'));
    ok(wait_until(sub { $mock->stats->{total} >= 40 }, 5), 'all 40 requests reached the upstream');
    is($mock->stats->{total}, 40, 'and no more');
    is(http_get("http://127.0.0.1:$admin/healthz")->{status}, 200, '/healthz 200 before');

    my $t0 = time;
    $gw->signal('TERM');
    ok(wait_until(sub { http_get("http://127.0.0.1:$admin/healthz")->{status} == 503 }, 5), '/healthz 503 while draining');
    is(http_get("http://127.0.0.1:$admin/healthz")->{body}, "draining\n", 'body says draining');
    ok(wait_until(sub { !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->port, Timeout => 1) }, 5),
       'the public listener is closed');
    my $r = http_get($gw->url('/s/late'));
    is($r->{status}, 599, 'new connections are refused') or diag explain $r;

    $gw->wait_exit(5, 'SIGTERM'); # and checks: exit 0
    cmp_ok(time - $t0, '<', 2, 'it left once the requests were done (800 ms upstream)');
    is_deeply($load->wait, { 200 => 40 }, 'all 40 accepted requests got 200');
    like($gw->log_text, qr/conflux: stopped/, 'logged');
};

subtest 'SIGINT does the same' => sub {
    my ($yaml) = conf('');
    my $gw = spawn_conflux($yaml);
    $gw->stop(signal => 'INT', timeout => 5); # and checks: exit 0
};

subtest 'shutdown_timeout bounds the wait' => sub {
    my ($yaml) = conf('shutdown_timeout: 500ms');
    my $gw = spawn_conflux($yaml);
    $mock->reset;
    my $load = background_load(3, $gw->url('/hang'));
    ok(wait_until(sub { $mock->stats->{total} >= 3 }, 5), 'three requests reached the 5 s upstream');
    my $t0 = time;
    $gw->stop(timeout => 5); # and checks: exit 0
    my $took = time - $t0;
    cmp_ok($took, '>=', 0.4, sprintf('waited for the requests (%.2fs)', $took));
    # the requests would take 5 s, the default shutdown_timeout 10 s: 3 s tells them apart on a busy machine
    cmp_ok($took, '<', 3, 'but not past shutdown_timeout (500 ms)');
    like($gw->log_text, qr/shutdown_timeout passed with 3 requests in flight/, 'says what it abandoned');
    $load->wait;
};

done_testing;
