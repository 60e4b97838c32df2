from huimages.cli import main

main()
