# examples/: a project's own integration tests with the installed Conflux::Mock. This build is installed into a scratch
# prefix; the examples then run with only that prefix (its share/conflux/perl on PERL5LIB, its bin on PATH), so they
# check the module as installed, finding its conflux-mock beside it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use CfTest;
use Test::More;

my $root = "$FindBin::Bin/..";
my $build = bindir();
plan skip_all => "$build is not a configured build" unless -f "$build/cmake_install.cmake";

my $prefix = tmpdir() . '/prefix';
my $r = run_cmd(['cmake', '--install', $build, '--prefix', $prefix], timeout => 60);
is($r->{code}, 0, 'cmake --install into a scratch prefix') or diag $r->{out} . $r->{err};
ok(-f "$prefix/share/conflux/perl/Conflux/Mock.pm", 'Conflux::Mock is installed under share/conflux/perl');
ok(-x "$prefix/bin/conflux-mock", 'with conflux-mock');

my %env = (PERL5LIB => "$prefix/share/conflux/perl", PATH => "$prefix/bin:$ENV{PATH}", CONFLUX_MOCK => '', CONFLUX => '');
$r = run_cmd(['prove', "$root/examples/t/"], env => \%env, timeout => 120);
is($r->{code}, 0, 'the examples pass with only the installed helper') or diag $r->{out} . $r->{err};
like($r->{out}, qr/^Result: PASS$/m, 'prove says PASS');
done_testing;
