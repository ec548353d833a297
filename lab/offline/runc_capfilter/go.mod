module registry-pull-lab/runc_capfilter

go 1.22
