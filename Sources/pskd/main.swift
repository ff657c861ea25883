print("pskd")
