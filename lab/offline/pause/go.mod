module registry-pull-lab/pause

go 1.22
