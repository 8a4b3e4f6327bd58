module nodeai/tools/go-template

go 1.19
