from recllmsim_hf.cli import main

main()
