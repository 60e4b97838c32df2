from huimages.ops.cli import main

main()
